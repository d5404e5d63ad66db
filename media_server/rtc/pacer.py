"""Frame pacing by absolute deadlines on a monotonic clock.

Frame n is due at `start + n * period`. A late caller (an event-loop stall) gets
a zero delay until it has caught up, so a stall delays frames instead of
dropping them and the long-run rate never drifts. Past `max_lag_s` behind,
catching up would burst seconds of audio at the peer, so the schedule is
restarted from now instead and the resync is counted.

`send_early` lets a frame leave before it is due (the first frame of speech
after silence need not wait for the next tick): the schedule moves earlier by
that much, and the time is given back a little at a time on later idle frames
(`next_delay(idle=True)`), so over time frames still leave at exactly one per
period and the peer's clock never drifts from ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PAYBACK_PER_FRAME = 0.05
"""Fraction of a period an idle frame is held back while time gained by early frames is given back."""


class Pacer:
    def __init__(self, period_s: float, max_lag_s: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.period_s = period_s
        self.max_lag_s = max_lag_s
        self._clock = clock
        self._start: float | None = None
        self._frames = 0
        self._gained_s = 0.0
        self.resyncs = 0

    def next_delay(self, idle: bool = False) -> float:
        """Seconds to wait before sending the next frame (0 when it is already due).

        `idle`: the frame is silence between utterances, which may be held back a
        little to give back time that early frames gained.
        """
        now = self._clock()
        if self._start is None:
            self._start = now
        if idle and self._gained_s > 0:
            payback = min(self._gained_s, self.period_s * PAYBACK_PER_FRAME)
            self._start += payback
            self._gained_s -= payback
        due = self._start + self._frames * self.period_s
        if now - due > self.max_lag_s:
            self.resyncs += 1
            self._start, self._frames, self._gained_s, due = now, 0, 0.0, now
        self._frames += 1
        return max(0.0, due - now)

    def send_early(self) -> None:
        """The frame last scheduled leaves now rather than when it was due."""
        if self._start is None:
            return
        due = self._start + (self._frames - 1) * self.period_s
        early = due - self._clock()
        if early > 0:
            self._start -= early
            self._gained_s += early

    def lag_s(self) -> float:
        """How far behind schedule the last frame was sent (0 before the first)."""
        if self._start is None:
            return 0.0
        return max(0.0, self._clock() - (self._start + (self._frames - 1) * self.period_s))
