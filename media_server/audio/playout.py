"""The audio waiting to be played on one track, cut into 20 ms frames.

Utterances are queued back to back, each closed by an end marker; the buffer
reports when an utterance's first sample is played (`start`), when its last
one is (`end`, with how much was played), and counts underruns: frames that
had to be filled with silence while an utterance had started but not ended.
`clear` (barge-in) drops everything queued, fading out the few milliseconds
that follow the cut so the stop does not click; `discard` (a failed
utterance) drops what is queued of one utterance the same way.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from media_server.audio.constants import FRAME_SAMPLES, RTC_RATE
from media_server.audio.pcm import Pcm

FADE_SAMPLES = RTC_RATE * 5 // 1000  # 5 ms fade-out at a cut


@dataclass(frozen=True)
class PlayoutEvent:
    kind: Literal["start", "end"]
    utterance_id: str
    played_samples: int


@dataclass
class _Audio:
    utterance_id: str
    pcm: Pcm
    offset: int = 0


@dataclass(frozen=True)
class _End:
    utterance_id: str


class PlayoutBuffer:
    def __init__(self) -> None:
        self._items: deque[_Audio | _End] = deque()
        self._current: str | None = None
        self._played = 0
        self._fade: Pcm | None = None
        self.buffered_samples = 0
        self.underrun_frames = 0

    @property
    def idle(self) -> bool:
        """Nothing is playing or queued: the next frame is silence between utterances."""
        return self._current is None and not self._items and self._fade is None

    def push(self, utterance_id: str, pcm: Pcm) -> None:
        if len(pcm):
            self._items.append(_Audio(utterance_id, pcm))
            self.buffered_samples += len(pcm)

    def end(self, utterance_id: str) -> None:
        self._items.append(_End(utterance_id))

    def clear(self) -> tuple[str | None, int]:
        """Drop all queued audio; returns the utterance that was cut and its played samples."""
        cut = (self._current, self._played)
        head = self._items[0] if self._items else None
        if isinstance(head, _Audio):
            self._fade_out(head)
        self._items.clear()
        self._current, self._played = None, 0
        self.buffered_samples = 0
        return cut

    def discard(self, utterance_id: str) -> None:
        """Drop the queued audio of `utterance_id`; if it is playing, it fades out where it is cut."""
        head = self._items[0] if self._items else None
        if isinstance(head, _Audio) and head.utterance_id == utterance_id == self._current:
            self._fade_out(head)
        kept: deque[_Audio | _End] = deque()
        for item in self._items:
            if isinstance(item, _Audio) and item.utterance_id == utterance_id:
                self.buffered_samples -= len(item.pcm) - item.offset
            else:
                kept.append(item)
        self._items = kept

    def _fade_out(self, head: _Audio) -> None:
        tail = head.pcm[head.offset : head.offset + FADE_SAMPLES].astype(np.float32)
        ramp = np.linspace(1.0, 0.0, len(tail), dtype=np.float32)
        self._fade = (tail * ramp).astype(np.int16)

    def next_frame(self) -> tuple[Pcm, list[PlayoutEvent]]:
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        events: list[PlayoutEvent] = []
        filled = 0
        if self._fade is not None:
            frame[: len(self._fade)] = self._fade
            filled, self._fade = FRAME_SAMPLES, None
        while filled < FRAME_SAMPLES and self._items:
            item = self._items[0]
            if isinstance(item, _End):
                self._items.popleft()
                events.append(PlayoutEvent("end", item.utterance_id, self._played))
                self._current, self._played = None, 0
                continue
            if self._current != item.utterance_id:
                self._current, self._played = item.utterance_id, 0
                events.append(PlayoutEvent("start", item.utterance_id, 0))
            take = min(FRAME_SAMPLES - filled, len(item.pcm) - item.offset)
            frame[filled : filled + take] = item.pcm[item.offset : item.offset + take]
            item.offset += take
            filled += take
            self._played += take
            self.buffered_samples -= take
            if item.offset == len(item.pcm):
                self._items.popleft()
        if filled < FRAME_SAMPLES and self._current is not None:
            self.underrun_frames += 1
        return frame, events
