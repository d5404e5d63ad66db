"""Twilio Media Streams (`GET /ws/telephony`) and Telnyx media streaming (`GET /ws/telnyx`): one message family.

Both platforms open a WebSocket and send JSON events: `connected`, `start`
(the call's ids), `media` (the caller's audio, base64: taken and discarded,
this server only speaks), `dtmf`, `mark`, `stop`. Audio goes back as `media`
events carrying base64 frames of 20 ms, paced in real time (`call.py`); a
`mark` named after each utterance once its audio has been sent, and on
barge-in a `clear`, on which both platforms drop the audio they buffered. A
`mark` the platform sends is its acknowledgement of one of ours (taken); any
other mark is echoed once the speech requested before it has been sent. A
`clear` from the socket is a barge-in too.

The dialects:
- Twilio: 8 kHz mu-law; every message carries the `streamSid` of `start`; the
  call is named by `start.callSid`. The socket also takes our text events
  `{"event": "speak", "text": ..., "id"?}`, `{"event": "append", "text": ...}`
  and `{"event": "flush"}`, and the session's events come back on it as
  `{"event": <type>, "streamSid": ..., ...}`.
- Telnyx: the codec of the stream's bidirectional RTP mode, named in the URL
  as on the platform (`?codec=PCMU|PCMA|L16&sample_rate=`; L16 in network byte
  order, as RTP carries it); the call is named by `start.call_control_id`.
  Text reaches the call on its control channel; only `error` events come
  back on this socket.

A message that is not JSON, a binary message, an unknown event or a bad field
is answered with an `error` event on the socket. Every message counts against
the call's rate (`MAX_MESSAGES_PER_SECOND` plus 50 for the caller's audio).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.config import Settings
from media_server.errors import InvalidRequest
from media_server.session.commands import to_command
from media_server.session.events import ClientEvent, Error
from media_server.transports.call import (
    ALAW,
    LINEAR16_BE,
    MULAW,
    Call,
    CallOrigin,
    CallServices,
    Codec,
    audio_from_query,
    mark_name,
)
from media_server.transports.media_socket import JsonMediaStream, OpenStream, Owner, media_socket

LEAD_S = 0.1
SPEECH_EVENTS = ("speak", "append", "flush")


@dataclass(frozen=True)
class Dialect:
    """What sets one platform of the family apart."""

    path: str
    route: str
    codecs: Mapping[str, Codec]
    default_codec: str
    call_id_field: str
    """The field of `start` that names the call."""
    stream_sid: bool
    """Every message carries the `streamSid` of `start`, and the socket shows the session's events and takes ours."""
    known_events: frozenset[str]
    """Events that carry nothing for the server."""


TWILIO = Dialect(
    path="/ws/telephony",
    route="telephony",
    codecs={"mulaw": Codec(MULAW, (8000,))},
    default_codec="mulaw",
    call_id_field="callSid",
    stream_sid=True,
    known_events=frozenset({"connected", "media", "stop", "dtmf"}),
)
TELNYX = Dialect(
    path="/ws/telnyx",
    route="telnyx",
    codecs={
        "PCMU": Codec(MULAW, (8000,)),
        "PCMA": Codec(ALAW, (8000,)),
        "L16": Codec(LINEAR16_BE, (8000, 16000, 24000)),
    },
    default_codec="PCMU",
    call_id_field="call_control_id",
    stream_sid=False,
    known_events=frozenset({"connected", "media", "stop", "dtmf", "error"}),
)


class StreamsWire:
    """A call's messages in the family's shape: `{"event": kind, ("streamSid": ...,) **fields}`."""

    lead_s = LEAD_S

    def __init__(self, dialect: Dialect, send: Callable[[str], Awaitable[None]]) -> None:
        self._dialect = dialect
        self._send = send
        self.stream_sid: str | None = None

    def message(self, kind: str, **fields: Any) -> str:
        head: dict[str, Any] = {"event": kind}
        if self._dialect.stream_sid:
            head["streamSid"] = self.stream_sid
        return json.dumps({**head, **fields})

    async def send_audio(self, frame: bytes) -> None:
        await self._send(self.message("media", media={"payload": base64.b64encode(frame).decode()}))

    async def send_text(self, text: str) -> None:
        await self._send(text)

    def event_message(self, event: ClientEvent) -> str | None:
        if self._dialect.stream_sid or isinstance(event, Error):
            return self.message(event.kind, **event.fields())
        return None

    def mark_message(self, name: str) -> str | None:
        return self.message("mark", mark={"name": name})

    def clear_message(self) -> str | None:
        return self.message("clear")


class StreamsCall(JsonMediaStream):
    """One media stream of the family: its events into its call."""

    def __init__(self, dialect: Dialect, wire: StreamsWire, call: Call, max_message_bytes: int) -> None:
        super().__init__(call, max_message_bytes)
        self._dialect = dialect
        self._wire = wire

    def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "start":
            self._start(message)
        elif kind == "mark":
            self.call.mark(mark_name(message.get("mark")))
        elif kind == "clear":
            self.call.barge_in()
        elif kind in SPEECH_EVENTS and self._dialect.stream_sid:
            self.call.dispatch(to_command({**message, "type": kind}))
        elif kind not in self._dialect.known_events:
            raise InvalidRequest(f"event: unknown event {kind!r}")

    def _start(self, message: dict[str, Any]) -> None:
        start = message.get("start")
        start = start if isinstance(start, dict) else {}
        if self._dialect.stream_sid:
            sid = message.get("streamSid") or start.get("streamSid")
            self._wire.stream_sid = sid if isinstance(sid, str) else None
        call_id = start.get(self._dialect.call_id_field)
        if isinstance(call_id, str):
            self.call.register(call_id)


def media_streams_socket(dialect: Dialect, services: CallServices, settings: Settings, owner: Owner) -> Handler:
    """The handler of one dialect's media WebSocket."""

    def accept(request: web.Request) -> OpenStream:
        audio = audio_from_query(request.query, dialect.codecs, dialect.default_codec)

        def open_stream(ws: web.WebSocketResponse, origin: CallOrigin) -> StreamsCall:
            wire = StreamsWire(dialect, ws.send_str)
            return StreamsCall(dialect, wire, origin.start(wire, audio), services.limits.max_message_bytes)

        return open_stream

    return media_socket(services, settings, dialect.route, owner, accept)
