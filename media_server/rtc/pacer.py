"""Frame pacing by absolute deadlines on a monotonic clock.

Frame n is due at `start + n * period`. A late caller (an event-loop stall) gets
a zero delay until it has caught up, so a stall delays frames instead of
dropping them and the long-run rate never drifts. Past `max_lag_s` behind,
catching up would burst seconds of audio at the peer, so the schedule is
restarted from now instead and the resync is counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, period_s: float, max_lag_s: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.period_s = period_s
        self.max_lag_s = max_lag_s
        self._clock = clock
        self._start: float | None = None
        self._frames = 0
        self.resyncs = 0

    def next_delay(self) -> float:
        """Seconds to wait before sending the next frame (0 when it is already due)."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._frames * self.period_s
        if now - due > self.max_lag_s:
            self.resyncs += 1
            self._start, self._frames, due = now, 0, now
        self._frames += 1
        return max(0.0, due - now)

    def lag_s(self) -> float:
        """How far behind schedule the last frame was sent (0 before the first)."""
        if self._start is None:
            return 0.0
        return max(0.0, self._clock() - (self._start + (self._frames - 1) * self.period_s))
