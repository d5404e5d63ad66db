"""`GET /ws/vonage`: the Vonage Voice API's WebSocket endpoint (an NCCO `connect` action to a `websocket`).

Vonage's first message is text: `{"event": "websocket:connected",
"content-type": "audio/l16;rate=16000", ...}`, with the NCCO endpoint's
`headers` beside those fields. It sets the call's rate (8000, 16000 or 24000
Hz) and names the call: its `call_id` header (or `uuid`), which the answer
webhook puts there. Then the caller's audio arrives as binary frames of 16-bit
linear PCM (taken and discarded) and events as text: `websocket:dtmf`,
`websocket:cleared`, `websocket:notify`. Speech goes back as binary frames of
20 ms (640 bytes at 16 kHz) paced in real time; after each utterance
`{"action": "notify", "payload": {"name": <utterance id>}}`, which Vonage
returns as `websocket:notify` once it has played; on barge-in
`{"action": "clear"}`, on which Vonage drops what it buffered. Text reaches
the call on its control channel.

A first message that is not a `websocket:connected` with a usable content type
and call id ends the connection (close 1008, the reason says what is missing);
after it, a text message that is not JSON or of an unknown kind is answered
with an `error` event.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.config import Settings
from media_server.errors import InvalidRequest, MediaServerError
from media_server.session.commands import decode_message
from media_server.session.events import ClientEvent, Error
from media_server.transports.call import LINEAR16, Call, CallAudio, CallOrigin, CallServices
from media_server.transports.media_socket import HangUp, JsonMediaStream, OpenStream, Owner, media_socket

PATH = "/ws/vonage"
ROUTE = "vonage"
LEAD_S = 0.1
RATES = (8000, 16000, 24000)
CONTENT_TYPE = re.compile(r"audio/l16;\s*rate=(\d+)", re.IGNORECASE)
CALL_ID_HEADERS = ("call_id", "uuid")
KNOWN_EVENTS = frozenset({"websocket:dtmf", "websocket:cleared", "websocket:notify"})


class VonageWire:
    """A call's messages in Vonage's shape: audio as binary frames, actions as JSON text."""

    lead_s = LEAD_S

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def send_audio(self, frame: bytes) -> None:
        await self._ws.send_bytes(frame)

    async def send_text(self, text: str) -> None:
        await self._ws.send_str(text)

    def event_message(self, event: ClientEvent) -> str | None:
        return json.dumps({"event": event.kind, **event.fields()}) if isinstance(event, Error) else None

    def mark_message(self, name: str) -> str | None:
        return json.dumps({"action": "notify", "payload": {"name": name}})

    def clear_message(self) -> str | None:
        return json.dumps({"action": "clear"})


class VonageEvents(JsonMediaStream):
    """The connection once its call has started: text events, binary caller audio."""

    def handle(self, message: dict[str, Any]) -> None:
        if message.get("event") not in KNOWN_EVENTS:
            raise InvalidRequest(f"event: unknown event {message.get('event')!r}")

    def on_binary(self, data: bytes) -> None:
        self.call.admit()


class VonageStream:
    """A Vonage connection: `websocket:connected` first, which starts the call."""

    def __init__(self, ws: web.WebSocketResponse, origin: CallOrigin) -> None:
        self._ws = ws
        self._origin = origin
        self._events: VonageEvents | None = None

    @property
    def call(self) -> Call | None:
        return None if self._events is None else self._events.call

    def on_text(self, data: str) -> None:
        if self._events is None:
            self._connect(data)
        else:
            self._events.on_text(data)

    def on_binary(self, data: bytes) -> None:
        if self._events is None:
            raise HangUp("audio before websocket:connected")
        self._events.on_binary(data)

    def _connect(self, data: str) -> None:
        max_bytes = self._origin.services.limits.max_message_bytes
        try:
            message = decode_message(data, max_bytes, "event")
        except MediaServerError as exc:
            raise HangUp(f"the first message must be websocket:connected: {exc.message}") from None
        if message.get("event") != "websocket:connected":
            raise HangUp("the first message must be websocket:connected")
        content_type = message.get("content-type")
        found = CONTENT_TYPE.fullmatch(content_type) if isinstance(content_type, str) else None
        if found is None or int(found.group(1)) not in RATES:
            raise HangUp(f"content-type: expected audio/l16;rate=N with N in {', '.join(map(str, RATES))}")
        call_id = next((message[name] for name in CALL_ID_HEADERS if isinstance(message.get(name), str)), None)
        if call_id is None:
            raise HangUp('websocket:connected: name the call in the NCCO endpoint\'s headers: {"call_id": ...}')
        call = self._origin.start(VonageWire(self._ws), CallAudio(LINEAR16, int(found.group(1))))
        self._events = VonageEvents(call, max_bytes)
        try:
            call.register(call_id)
        except InvalidRequest as exc:
            raise HangUp(exc.message) from None


def vonage_socket(services: CallServices, settings: Settings, owner: Owner) -> Handler:
    """The handler of `GET /ws/vonage`."""

    def accept(request: web.Request) -> OpenStream:
        return VonageStream

    return media_socket(services, settings, ROUTE, owner, accept)
