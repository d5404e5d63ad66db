"""SpeechTrack: the outbound audio track of one peer, paced 20 ms frames at 48 kHz, Opus-encoded.

Silence when idle; speech from its playout queue (`session/output.py`) when
there is some. The first frame of speech after silence leaves as soon as it is
written rather than at the next 20 ms tick (`Pacer.send_early`; RTP timestamps
stay continuous). The track knows what was actually sent, so it reports
playout events (first sample of an utterance sent, last sample sent) to its
listener the moment they leave. As a session's audio output, `write` waits
while more than `max_ahead_s` of audio is queued, so a long utterance never
piles up unbounded in memory.
Frames leave as Opus packets (`opus.py`), which aiortc only packetizes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import Packet

from media_server.audio.constants import FRAME_S, RTC_RATE
from media_server.audio.pcm import Pcm
from media_server.rtc.opus import OpusPackets
from media_server.rtc.pacer import Pacer
from media_server.session.output import Cue, PlayoutListener, PlayoutQueue, no_listener

MAX_AHEAD_S = 20.0
ROUTE = "webrtc"


class TrackObserver(Protocol):
    """Per-frame numbers a track reports (metrics)."""

    def observe_track_lag(self, seconds: float) -> None: ...

    def record_underrun(self, route: str, silence_s: float) -> None: ...

    def record_track_resync(self) -> None:
        """The track fell so far behind (an event-loop stall) that its schedule restarted."""


class SpeechTrack(MediaStreamTrack):
    kind = "audio"
    sample_rate = RTC_RATE

    def __init__(self, observer: TrackObserver | None = None, max_ahead_s: float = MAX_AHEAD_S) -> None:
        super().__init__()
        self._observer = observer
        self._gap_frames = 0
        self.queue = PlayoutQueue(RTC_RATE)
        self.pacer = Pacer(FRAME_S)
        self._listener: PlayoutListener = no_listener
        self._opus = OpusPackets()
        self._max_ahead = int(max_ahead_s * RTC_RATE)
        self._room = asyncio.Event()
        self._speech = asyncio.Event()

    def report_to(self, listener: PlayoutListener) -> None:
        self._listener = listener

    async def write(self, utterance_id: str, pcm: Pcm, cues: Sequence[Cue] = ()) -> None:
        while self.queue.buffered_samples > self._max_ahead:
            self._room.clear()
            await self._room.wait()
        self.queue.push(utterance_id, pcm, cues)
        if len(pcm):
            self._speech.set()

    def end(self, utterance_id: str) -> None:
        self.queue.end(utterance_id)

    def clear(self) -> tuple[str | None, int]:
        cut = self.queue.clear()
        self._room.set()
        return cut

    def discard(self, utterance_id: str) -> None:
        self.queue.discard(utterance_id)
        self._room.set()

    async def recv(self) -> Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        idle = self.queue.idle
        resyncs = self.pacer.resyncs
        delay = self.pacer.next_delay(idle=idle)
        if self.pacer.resyncs > resyncs and self._observer is not None:
            self._observer.record_track_resync()
        if delay > 0:
            if idle:
                await self._wait_for_speech(delay)
            else:
                await asyncio.sleep(delay)
        underruns = self.queue.underrun_frames
        pcm, events = self.queue.next_frame()
        if self.queue.buffered_samples <= self._max_ahead:
            self._room.set()
        self._observe(underrun=self.queue.underrun_frames > underruns)
        packet = self._opus.encode(pcm, silent=idle and self.queue.idle)
        for event in events:
            self._listener(event)
        return packet

    async def _wait_for_speech(self, delay: float) -> None:
        """Sleep until the next silent frame is due, or send at once when speech arrives meanwhile."""
        self._speech.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._speech.wait()
                self.pacer.send_early()

    def _observe(self, underrun: bool) -> None:
        """Report the pacing lag, and each gap of silence inside an utterance once it ends."""
        if self._observer is None:
            return
        self._observer.observe_track_lag(self.pacer.lag_s())
        if underrun:
            self._gap_frames += 1
        elif self._gap_frames:
            self._observer.record_underrun(ROUTE, self._gap_frames * FRAME_S)
            self._gap_frames = 0
