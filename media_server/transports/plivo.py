"""`GET /ws/plivo`: Plivo's bidirectional audio streams (the `<Stream bidirectional="true">` XML element).

Plivo sends JSON events: `start` (the call's `callId` and the `streamId`),
`media` (the caller's audio: taken and discarded), `dtmf`, `playedStream`
(a checkpoint of ours has played), `clearedAudio` (its buffer was dropped),
`stop`. The call is named by `start.callId`. Speech goes back as `playAudio`
events of one 20 ms frame each, paced in real time, in the encoding the URL
names (`?codec=mulaw` (the default, 8 kHz) or `?codec=l16&sample_rate=8000|16000`:
`audio/x-mulaw` or `audio/x-l16`); after each utterance a `checkpoint` named
after it, and on barge-in `clearAudio`. Text reaches the call on its control
channel; only `error` events come back on this socket, for a message that is
not JSON, binary, of an unknown kind or with a bad field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.config import Settings
from media_server.errors import InvalidRequest
from media_server.session.events import ClientEvent, Error
from media_server.transports.call import LINEAR16, MULAW, CallAudio, CallOrigin, CallServices, Codec, audio_from_query
from media_server.transports.media_socket import JsonMediaStream, OpenStream, Owner, media_socket

PATH = "/ws/plivo"
ROUTE = "plivo"
LEAD_S = 0.1
CODECS = {"mulaw": Codec(MULAW, (8000,)), "l16": Codec(LINEAR16, (8000, 16000))}
CONTENT_TYPES = {MULAW: "audio/x-mulaw", LINEAR16: "audio/x-l16"}
KNOWN_EVENTS = frozenset({"media", "dtmf", "playedStream", "clearedAudio", "stop"})


class PlivoWire:
    """A call's messages in Plivo's shape."""

    lead_s = LEAD_S

    def __init__(self, audio: CallAudio, send: Callable[[str], Awaitable[None]]) -> None:
        self._content_type = CONTENT_TYPES[audio.encoding]
        self._sample_rate = audio.sample_rate
        self._send = send
        self.stream_id: str | None = None

    async def send_audio(self, frame: bytes) -> None:
        media = {
            "contentType": self._content_type,
            "sampleRate": self._sample_rate,
            "payload": base64.b64encode(frame).decode(),
        }
        await self._send(json.dumps({"event": "playAudio", "media": media}))

    async def send_text(self, text: str) -> None:
        await self._send(text)

    def event_message(self, event: ClientEvent) -> str | None:
        return json.dumps({"event": event.kind, **event.fields()}) if isinstance(event, Error) else None

    def mark_message(self, name: str) -> str | None:
        return json.dumps({"event": "checkpoint", "streamId": self.stream_id, "name": name})

    def clear_message(self) -> str | None:
        return json.dumps({"event": "clearAudio", "streamId": self.stream_id})


class PlivoStream(JsonMediaStream):
    def __init__(self, wire: PlivoWire, origin: CallOrigin, audio: CallAudio) -> None:
        super().__init__(origin.start(wire, audio), origin.services.limits.max_message_bytes)
        self._wire = wire

    def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "start":
            start = message.get("start")
            start = start if isinstance(start, dict) else {}
            stream_id, call_id = start.get("streamId"), start.get("callId")
            if not isinstance(stream_id, str) or not isinstance(call_id, str):
                raise InvalidRequest("start: needs the strings start.streamId and start.callId")
            self._wire.stream_id = stream_id
            self.call.register(call_id)
        elif kind not in KNOWN_EVENTS:
            raise InvalidRequest(f"event: unknown event {kind!r}")


def plivo_socket(services: CallServices, settings: Settings, owner: Owner) -> Handler:
    """The handler of `GET /ws/plivo`."""

    def accept(request: web.Request) -> OpenStream:
        audio = audio_from_query(request.query, CODECS, "mulaw")
        return lambda ws, origin: PlivoStream(PlivoWire(audio, ws.send_str), origin, audio)

    return media_socket(services, settings, ROUTE, owner, accept)
