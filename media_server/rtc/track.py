"""SpeechTrack: the outbound audio track of one peer, paced 20 ms frames at 48 kHz.

Silence when idle; speech from its PlayoutBuffer when there is some. The track
knows what was actually sent, so it reports playout events (first sample of an
utterance sent, last sample sent) to its listener the moment they leave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from fractions import Fraction

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from media_server.audio.constants import FRAME_S, FRAME_SAMPLES, RTC_RATE
from media_server.rtc.pacer import Pacer
from media_server.rtc.playout import PlayoutBuffer, PlayoutEvent

TIME_BASE = Fraction(1, RTC_RATE)


class SpeechTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, on_event: Callable[[PlayoutEvent], None]) -> None:
        super().__init__()
        self.buffer = PlayoutBuffer()
        self.pacer = Pacer(FRAME_S)
        self._on_event = on_event
        self._pts = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        delay = self.pacer.next_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        pcm, events = self.buffer.next_frame()
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RTC_RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += FRAME_SAMPLES
        for event in events:
            self._on_event(event)
        return frame
