"""Attaching speech to a new peer: its track, its data channel, its conversation.

Events leave on the data channel, which buffers without limit what the peer
has not acknowledged; a peer that leaves more than `MAX_UNSENT_BYTES` there is
not reading, and its connection is closed (the registry then forgets it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from media_server.config import Settings
from media_server.conversation import Conversation
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest
from media_server.observability.metrics import Metrics
from media_server.rtc.track import ROUTE, SpeechTrack
from signaling.registry import Attach, Peer

log = logging.getLogger(__name__)


class RtcSession:
    """The media side of one peer: a conversation playing into a speech track."""

    def __init__(self, conversation: Conversation, track: SpeechTrack, metrics: Metrics, pc: RTCPeerConnection) -> None:
        self.conversation = conversation
        self.track = track
        self._pc = pc
        self._hanging_up: asyncio.Task[None] | None = None
        self._live = ExitStack()
        self._live.enter_context(metrics.session(ROUTE))

    def hang_up(self, why: str) -> None:
        """Close the peer connection (once); its registry closes this session as it sees it close."""
        if self._hanging_up is None:
            log.warning("closing a WebRTC peer that does not read: %s", why)
            self._hanging_up = asyncio.create_task(self._pc.close(), name="rtc-hang-up")

    async def wait_idle(self) -> None:
        await self.conversation.wait_idle()

    async def close(self) -> None:
        await self.conversation.close()
        self.track.stop()
        self._live.close()


def speech_attacher(engine: Engine, settings: Settings, metrics: Metrics) -> Attach:
    """The signaling callback that gives each new peer a conversation and a track."""

    async def attach(peer: Peer, options: Mapping[str, Any]) -> RtcSession:
        voice = options.get("voice")
        if voice is not None and not isinstance(voice, str):
            raise InvalidRequest("voice: must be a string")
        if voice:
            engine.resolve_voice(voice)
        conversation = Conversation(
            engine, settings, voice=voice, on_activity=peer.touch, route=ROUTE, observer=metrics
        )
        track = SpeechTrack(on_event=conversation.on_playout, observer=metrics)
        peer.pc.addTrack(track)
        conversation.attach(track)
        session = RtcSession(conversation, track, metrics, peer.pc)
        limit = settings.max_unsent_bytes

        @peer.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            def send(text: str) -> None:
                if channel.readyState != "open":
                    return
                if limit and channel.bufferedAmount + len(text) > limit:
                    session.hang_up(f"over {limit} bytes of events wait on its data channel")
                    return
                channel.send(text)

            conversation.bind(send)
            channel.on("message", conversation.handle)

        return session

    return attach
