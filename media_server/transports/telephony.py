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
its own buffer. The session's events (`started`, `audio_start`, `done`,
`error`...) are sent as `{"event": <type>, "streamSid": ..., ...}`
(`event_message`).

Every message, `media` included, counts against the session's message rate,
which is `MAX_MESSAGES_PER_SECOND` plus Twilio's 50 `media` events a second.
Marks waiting for speech to end are bounded (`MAX_WAITING_MARKS`, names of at
most `MAX_ID_CHARS`), so echoes cannot pile up behind a long utterance.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from media_server.audio.codecs import MulawEncoder
from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest, MediaServerError
from media_server.session.commands import MAX_ID_CHARS, Cancel, decode_message, to_command
from media_server.session.events import ClientEvent, Ended, SessionEvent
from media_server.session.session import Session, SessionLimits, SessionObserver
from media_server.transports.socket_guard import disconnector, patience, websocket_response
from media_server.transports.socket_output import Framing, Patience, SocketOutput

PATH = "/ws/telephony"
RATE = 8000
ROUTE = "telephony"
FRAME = Framing(frame_bytes=160, frame_s=0.020, silence=b"\xff")
SPEECH_EVENTS = ("speak", "append", "flush")
MEDIA_EVENTS_PER_S = 50.0
MAX_WAITING_MARKS = 64


def telephony_message(kind: str, stream_sid: str | None, **fields: Any) -> str:
    """A Twilio-style message: `{"event": kind, "streamSid": stream_sid, **fields}`."""
    return json.dumps({"event": kind, "streamSid": stream_sid, **fields})


def event_message(event: ClientEvent, stream_sid: str | None) -> str:
    """A session event as a telephony message."""
    return telephony_message(event.kind, stream_sid, **event.fields())


class TelephonyCall:
    """One call: Twilio's events in, its session's speech out as paced mu-law frames and events."""

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        engine: Engine,
        limits: SessionLimits,
        observer: SessionObserver,
        voice: str | None,
        patience: Patience,
        on_not_reading: Callable[[str], None],
    ) -> None:
        self._send_text = send_text
        self.stream_sid: str | None = None
        self._max_message_bytes = limits.max_message_bytes
        self._waiting_marks = 0
        self.output = SocketOutput(MulawEncoder(RATE), self._send_media, send_text, patience, on_not_reading, FRAME)
        self.session = Session(engine, self.output, self._send_event, limits, ROUTE, observer, voice)

    def handle(self, raw: str) -> None:
        if not self.session.admit():
            return
        try:
            self._handle(decode_message(raw, self._max_message_bytes, "event"))
        except MediaServerError as exc:
            self.session.report_error(exc)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "start":
            start = message.get("start")
            sid = message.get("streamSid") or (start.get("streamSid") if isinstance(start, dict) else None)
            self.stream_sid = sid if isinstance(sid, str) else None
        elif kind == "mark":
            self._mark(message.get("mark"))
        elif kind == "clear":
            self.session.dispatch(Cancel())
            self.output.send_now(telephony_message("clear", self.stream_sid))
        elif kind in SPEECH_EVENTS:
            self.session.dispatch(to_command({**message, "type": kind}))
        elif kind not in ("connected", "media", "stop", "dtmf"):
            raise InvalidRequest(f"event: unknown event {kind!r}")

    async def close(self) -> None:
        try:
            await self.session.close()
        finally:  # the client going away cancels the handler, maybe while the session closes
            await self.output.close()

    def _mark(self, mark: object) -> None:
        """Echo `mark` once the speech requested before it has been sent."""
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str) or len(name) > MAX_ID_CHARS:
            raise InvalidRequest(f"mark.name: required, a string of at most {MAX_ID_CHARS} characters")
        if self._waiting_marks >= MAX_WAITING_MARKS:
            raise InvalidRequest(f"mark: {MAX_WAITING_MARKS} marks already wait for speech to be sent")
        self._waiting_marks += 1
        echo = telephony_message("mark", self.stream_sid, mark={"name": name})

        def send_echo() -> None:
            self._waiting_marks -= 1
            self.output.after_audio(echo)

        self.session.after_queued(send_echo)

    def _send_event(self, event: SessionEvent) -> None:
        if isinstance(event, Ended):
            self.output.send_now(telephony_message("mark", self.stream_sid, mark={"name": event.id}))
        else:
            self.output.send_now(event_message(event, self.stream_sid))

    async def _send_media(self, frame: bytes) -> None:
        payload = base64.b64encode(frame).decode()
        await self._send_text(telephony_message("media", self.stream_sid, media={"payload": payload}))


def telephony_socket(engine: Engine, settings: Settings, observer: SessionObserver) -> Handler:
    """The handler of `GET /ws/telephony`."""
    rate = settings.max_messages_per_second
    limits = dataclasses.replace(
        SessionLimits.from_settings(settings), messages_per_second=rate + MEDIA_EVENTS_PER_S if rate else 0.0
    )

    async def ws_telephony(request: web.Request) -> web.StreamResponse:
        ws = websocket_response(settings)
        await ws.prepare(request)
        call = TelephonyCall(
            ws.send_str,
            engine,
            limits,
            observer,
            request.query.get("voice"),
            patience(settings),
            disconnector(request, ROUTE),
        )
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    call.handle(message.data)
                elif message.type == WSMsgType.BINARY:
                    call.session.admit()  # not part of the protocol, ignored; but counted
        finally:
            await call.close()
        return ws

    return ws_telephony
