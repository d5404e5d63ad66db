"""Attaching speech to a new peer: its track, its data channel, its session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiortc import RTCDataChannel

from media_server.config import Settings
from media_server.engine.client import EngineClient
from media_server.errors import InvalidRequest
from media_server.rtc.session import SpeechSession
from signaling.registry import Attach, Peer


def speech_attacher(engine: EngineClient, settings: Settings) -> Attach:
    """The signaling callback that gives each new peer a SpeechSession."""

    async def attach(peer: Peer, options: Mapping[str, Any]) -> SpeechSession:
        voice = options.get("voice")
        if voice is not None and not isinstance(voice, str):
            raise InvalidRequest("voice: must be a string")
        if voice:
            engine.resolve_voice(voice)
        session = SpeechSession(engine, settings, voice=voice, on_activity=peer.touch)
        peer.pc.addTrack(session.track)

        @peer.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            def send(text: str) -> None:
                if channel.readyState == "open":
                    channel.send(text)

            session.bind(send)
            channel.on("message", session.handle)

        return session

    return attach
