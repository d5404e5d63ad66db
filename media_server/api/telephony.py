"""`GET /ws/telephony`: a Twilio Media Streams endpoint, so a phone call speaks with no glue.

The telephony side sends Twilio's JSON events: `connected`, `start` (with the
`streamSid`), `media` (caller audio: accepted and ignored, this server only
speaks), `mark` (echoed back once all speech requested before it has been sent),
`clear` (barge-in: stop speaking at once, drop queued text), `stop`. Text to
speak arrives as our custom events on the same socket:
`{"event": "speak", "text": "...", "id"?}`, `{"event": "append", "text": "..."}`,
`{"event": "flush"}`. Audio leaves as `media` events carrying base64 8 kHz
mu-law in 20 ms frames (160 bytes), paced in real time; after each utterance a
`mark` named after its id; on `clear` a `clear` back so the far end flushes
its own buffer. Protocol events (`started`, `audio_start`, `done`, `error`...)
are sent as `{"event": <type>, ...}`.

Every message, `media` included, counts against the session's message rate,
which is `MAX_MESSAGES_PER_SECOND` plus Twilio's 50 `media` events a second.
Marks waiting for speech to end are bounded (`MAX_WAITING_MARKS`, names of at
most `MAX_ID_CHARS`), so echoes cannot pile up behind a long utterance.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from media_server.api.keys import ENGINE, METRICS, SETTINGS
from media_server.api.security import add_websocket_route
from media_server.api.socket_guard import disconnector, patience, websocket_response
from media_server.api.socket_output import Framing, Patience, SocketOutput
from media_server.audio.codecs import MulawEncoder
from media_server.audio.playout import PlayoutEvent
from media_server.conversation import Conversation
from media_server.errors import InvalidRequest, MediaServerError
from media_server.protocol import MAX_ID_CHARS, Cancel, decode_message, to_command

RATE = 8000
ROUTE = "telephony"
FRAME = Framing(frame_bytes=160, frame_s=0.020, silence=b"\xff")
SPEECH_EVENTS = ("speak", "append", "flush")
MEDIA_EVENTS_PER_S = 50.0
MAX_WAITING_MARKS = 64


class TelephonyCall:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        conversation: Conversation,
        max_message_bytes: int,
        patience: Patience,
        on_not_reading: Callable[[str], None],
    ) -> None:
        self.ws = ws
        self.stream_sid: str | None = None
        self.conversation = conversation
        self.output = SocketOutput(
            MulawEncoder(RATE), self._send_media, ws.send_str, self._on_playout, patience, on_not_reading, FRAME
        )
        self._max_message_bytes = max_message_bytes
        self._waiting_marks = 0
        conversation.bind(self._send_event)
        conversation.attach(self.output)

    def handle(self, raw: str) -> None:
        if not self.conversation.admit():
            return
        try:
            self._handle(decode_message(raw, self._max_message_bytes, "event"))
        except MediaServerError as exc:
            self.conversation.send_error(exc)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "start":
            start = message.get("start")
            sid = message.get("streamSid") or (start.get("streamSid") if isinstance(start, dict) else None)
            self.stream_sid = sid if isinstance(sid, str) else None
        elif kind == "mark":
            self._mark(message.get("mark"))
        elif kind == "clear":
            self.conversation.dispatch(Cancel())
            self.output.send_now(self._twilio("clear"))
        elif kind in SPEECH_EVENTS:
            self.conversation.dispatch(to_command({**message, "type": kind}))
        elif kind not in ("connected", "media", "stop", "dtmf"):
            raise InvalidRequest(f"event: unknown event {kind!r}")

    async def close(self) -> None:
        try:
            await self.conversation.close()
        finally:  # the client going away cancels the handler, maybe while the conversation closes
            await self.output.close()

    def _mark(self, mark: object) -> None:
        """Echo `mark` once the speech requested before it has been sent."""
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str) or len(name) > MAX_ID_CHARS:
            raise InvalidRequest(f"mark.name: required, a string of at most {MAX_ID_CHARS} characters")
        if self._waiting_marks >= MAX_WAITING_MARKS:
            raise InvalidRequest(f"mark: {MAX_WAITING_MARKS} marks already wait for speech to be sent")
        self._waiting_marks += 1
        echo = self._twilio("mark", mark={"name": name})

        def send_echo() -> None:
            self._waiting_marks -= 1
            self.output.after_audio(echo)

        self.conversation.after_queued(send_echo)

    def _on_playout(self, event: PlayoutEvent) -> None:
        self.conversation.on_playout(event)
        if event.kind == "end":
            self.output.send_now(self._twilio("mark", mark={"name": event.utterance_id}))

    async def _send_media(self, frame: bytes) -> None:
        await self.ws.send_str(self._twilio("media", media={"payload": base64.b64encode(frame).decode()}))

    def _send_event(self, text: str) -> None:
        event = json.loads(text)
        self.output.send_now(json.dumps({"event": event.pop("type"), "streamSid": self.stream_sid, **event}))

    def _twilio(self, event: str, **fields: Any) -> str:
        return json.dumps({"event": event, "streamSid": self.stream_sid, **fields})


async def ws_telephony(request: web.Request) -> web.WebSocketResponse:
    engine, settings, metrics = request.app[ENGINE], request.app[SETTINGS], request.app[METRICS]
    ws = websocket_response(settings)
    await ws.prepare(request)
    rate = settings.max_messages_per_second
    conversation = Conversation(
        engine,
        settings,
        voice=request.query.get("voice"),
        route=ROUTE,
        observer=metrics,
        messages_per_second=rate + MEDIA_EVENTS_PER_S if rate else 0.0,
    )
    call = TelephonyCall(ws, conversation, settings.max_message_bytes, patience(settings), disconnector(request, ROUTE))
    with metrics.session(ROUTE):
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    call.handle(message.data)
                elif message.type == WSMsgType.BINARY:
                    conversation.admit()  # not part of the protocol, ignored; but counted
        finally:
            await call.close()
    return ws


def add_routes(app: web.Application) -> None:
    add_websocket_route(app, "/ws/telephony", ws_telephony)
