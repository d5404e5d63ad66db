"""A real WebRTC client of the media server: an aiortc peer that decodes the Opus track.

Used by the tests and by the load generator alike. It negotiates through
`POST /rtc/offer`, talks the data-channel protocol, and records every decoded
20 ms frame with its arrival time and loudness, so callers can tell when audio
was heard and for how long. `bare_offer` is the same offer from a peer that
does nothing more, for what the server does with offers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

# RMS (s16 scale) above which a decoded frame counts as audible; Opus-coded
# digital silence decodes to (near) zeros, speech is in the hundreds or more.
AUDIBLE_RMS = 30.0
FRAME_S = 0.020
# aiortc's receiver holds 4 audio frames in its jitter buffer (prefetch=4)
# before decoding, so a frame is decoded about this long after it arrived.
RECEIVER_DELAY_S = 4 * FRAME_S

Event = dict[str, Any]


@dataclass
class Frame:
    index: int
    received_at: float
    rms: float


@dataclass
class Received:
    """Everything the client got: events with arrival times, and decoded frames."""

    events: list[tuple[float, Event]] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)

    def audible(self, since: float = 0.0, until: float = float("inf")) -> list[Frame]:
        return [f for f in self.frames if since <= f.received_at <= until and f.rms > AUDIBLE_RMS]


class SpeechClient:
    def __init__(self, base_url: str, voice: str | None = None, configuration: RTCConfiguration | None = None) -> None:
        self.base_url = base_url
        self.voice = voice
        self.session_id: str | None = None
        self.received = Received()
        self._pc = RTCPeerConnection(configuration)
        self._channel = self._pc.createDataChannel("tts")
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()

    async def connect(self, timeout_s: float = 10.0) -> None:
        self._pc.addTransceiver("audio", direction="recvonly")
        self._pc.on("track", self._on_track)
        self._channel.on("open", self._opened.set)
        self._channel.on("message", self._on_message)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        offer: dict[str, Any] = {"sdp": self._pc.localDescription.sdp, "type": "offer"}
        if self.voice:
            offer["voice"] = self.voice
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.base_url + "/rtc/offer", json=offer) as resp,
        ):
            answer = await resp.json()
            if resp.status != 200:
                raise ConnectionError(f"offer refused: {resp.status} {answer}")
        self.session_id = answer["session_id"]
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        await asyncio.wait_for(self._opened.wait(), timeout_s)

    def send(self, message: Event) -> float:
        """Send one protocol message; returns the monotonic time it was sent."""
        self._channel.send(json.dumps(message))
        return time.monotonic()

    def send_raw(self, raw: str) -> None:
        self._channel.send(raw)

    async def wait_event(
        self, kind: str, utterance_id: str | None = None, timeout_s: float = 20.0, after: float = 0.0
    ) -> tuple[float, Event]:
        """The first event of `kind` (and `id`, if given) received at or after `after`."""
        return await self.wait_first((kind,), utterance_id, timeout_s, after)

    async def wait_first(
        self,
        kinds: tuple[str, ...],
        utterance_id: str | None = None,
        timeout_s: float = 20.0,
        after: float = 0.0,
    ) -> tuple[float, Event]:
        """The first event of any of `kinds` (and `id`, if given) received at or after `after`."""

        def match() -> tuple[float, Event] | None:
            for at, ev in self.received.events:
                if at >= after and ev.get("type") in kinds and (utterance_id is None or ev.get("id") == utterance_id):
                    return at, ev
            return None

        await self.wait_until(lambda: match() is not None, timeout_s)
        found = match()
        assert found is not None
        return found

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pc.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(self._read(track))

    def _on_message(self, message: str | bytes) -> None:
        self.received.events.append((time.monotonic(), json.loads(message)))
        self._changed.set()

    async def _read(self, track: MediaStreamTrack) -> None:
        index = 0
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, AudioFrame)
            samples = frame.to_ndarray().astype(np.float32)
            rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
            self.received.frames.append(Frame(index, time.monotonic(), rms))
            index += 1
            self._changed.set()


async def bare_offer() -> tuple[RTCPeerConnection, str]:
    """A real offer (audio to receive, a data channel, candidates gathered) from a peer that does nothing more.

    The caller closes the peer.
    """
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        pc.createDataChannel("tts")
        await pc.setLocalDescription(await pc.createOffer())
    except BaseException:
        await pc.close()
        raise
    sdp: str = pc.localDescription.sdp
    return pc, sdp
