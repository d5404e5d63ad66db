"""Attaching speech to a new peer: its track, its session, and the data channel that carries the session's messages.

The track is added when the peer is set up (it must be in the answer); the
data channel arrives later, from the client. Events leave as the shared JSON
protocol on the latest open channel; before a channel exists no client
message can have arrived, so there is no event to send. The channel buffers
without limit what the peer has not acknowledged: a peer that leaves more
than `max_unsent_bytes` there is not reading, and its connection is closed
(the registry then forgets it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from aiortc import RTCDataChannel

from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest
from media_server.rtc.track import ROUTE, SpeechTrack, TrackObserver
from media_server.session.events import json_sink
from media_server.session.session import Session, SessionLimits, SessionObserver
from signaling.registry import Attach, Peer

log = logging.getLogger(__name__)


class PeerObserver(SessionObserver, TrackObserver, Protocol):
    """What a peer's session and track report (metrics)."""


class PeerMedia:
    """The media side of one peer: a session playing into a speech track, talking over the data channel."""

    def __init__(
        self,
        peer: Peer,
        engine: Engine,
        limits: SessionLimits,
        observer: PeerObserver,
        voice: str | None,
        max_unsent_bytes: int,
    ) -> None:
        self._pc = peer.pc
        self._channel: RTCDataChannel | None = None
        self._max_unsent_bytes = max_unsent_bytes
        self._hanging_up: asyncio.Task[None] | None = None
        self.track = SpeechTrack(observer=observer)
        peer.pc.addTrack(self.track)
        self.session = Session(
            engine, self.track, json_sink(self._send), limits, ROUTE, observer, voice, on_activity=peer.touch
        )
        peer.pc.on("datachannel", self._on_datachannel)

    def hang_up(self, why: str) -> None:
        """Close the peer connection (once); its registry closes this session as it sees it close."""
        if self._hanging_up is None:
            log.warning("closing a WebRTC peer that does not read: %s", why)
            self._hanging_up = asyncio.create_task(self._pc.close(), name="rtc-hang-up")

    async def wait_idle(self) -> None:
        await self.session.wait_idle()

    async def close(self) -> None:
        try:
            await self.session.close()
        finally:
            self.track.stop()

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        channel.on("message", self.session.handle)

    def _send(self, text: str) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return
        limit = self._max_unsent_bytes
        if limit and channel.bufferedAmount + len(text) > limit:
            self.hang_up(f"over {limit} bytes of events wait on its data channel")
            return
        channel.send(text)


def speech_attacher(engine: Engine, settings: Settings, observer: PeerObserver) -> Attach:
    """The signaling callback that gives each new peer a session and a track."""
    limits = SessionLimits.from_settings(settings)

    async def attach(peer: Peer, options: Mapping[str, Any]) -> PeerMedia:
        voice = options.get("voice")
        if voice is not None and not isinstance(voice, str):
            raise InvalidRequest("voice: must be a string")
        if voice:
            engine.resolve_voice(voice)
        return PeerMedia(peer, engine, limits, observer, voice, settings.max_unsent_bytes)

    return attach
