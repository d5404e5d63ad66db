"""Attaching speech to a new peer: its track, its data channel, its conversation."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from aiortc import RTCDataChannel

from media_server.config import Settings
from media_server.conversation import Conversation
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest
from media_server.observability.metrics import Metrics
from media_server.rtc.track import ROUTE, SpeechTrack
from signaling.registry import Attach, Peer


class RtcSession:
    """The media side of one peer: a conversation playing into a speech track."""

    def __init__(self, conversation: Conversation, track: SpeechTrack, metrics: Metrics) -> None:
        self.conversation = conversation
        self.track = track
        self._live = ExitStack()
        self._live.enter_context(metrics.session(ROUTE))

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

        @peer.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            def send(text: str) -> None:
                if channel.readyState == "open":
                    channel.send(text)

            conversation.bind(send)
            channel.on("message", conversation.handle)

        return RtcSession(conversation, track, metrics)

    return attach
