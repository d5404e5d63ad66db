"""`GET /ws/jambonz/tts`: jambonz's streaming custom TTS vendor API.

jambonz opens the socket with `?voice=&language=&sampleRate=` (the call's
rate) and `Authorization: Bearer <the vendor's API key>`. The server answers
`{"type": "connect", "data": {"sample_rate": N, "base64_encoding": false}}`,
then takes `{"type": "stream", "text": ...}` (text as an LLM makes it, spoken
clause by clause), `{"type": "flush"}` (speak what was streamed so far),
`{"type": "stop"}` (barge-in: the speech in progress and everything queued is
dropped; the socket stays open for the next turn) and `{"type": "keepalive"}`.
Speech goes back as binary messages of 16-bit little-endian PCM at the call's
rate as it is synthesized (jambonz buffers and plays it). A bad message, an
unknown kind or a failed utterance is answered with
`{"type": "error", "error": <message>}`; the session's other events have no
place in this protocol. The voice is one of `/v1/voices`; without one, the
first that speaks `language`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from media_server.audio.codecs import PcmEncoder
from media_server.audio.sample_rates import JAMBONZ_RATES, requested_rate
from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest, MediaServerError
from media_server.session.commands import Cancel, Command, decode_message, to_command
from media_server.session.events import Error, SessionEvent
from media_server.session.session import Session, SessionLimits, SessionObserver
from media_server.transports.socket_guard import close_session, disconnector, patience, websocket_response
from media_server.transports.socket_output import SocketOutput

PATH = "/ws/jambonz/tts"
ROUTE = "jambonz"
KINDS = ("stream", "flush", "stop", "keepalive")


def _command(message: dict[str, Any]) -> Command | None:
    kind = message.get("type")
    if kind == "stream":
        return to_command({**message, "type": "append"})
    if kind == "flush":
        return to_command(message)
    if kind == "stop":
        return Cancel()
    if kind == "keepalive":
        return None
    raise InvalidRequest(f"type: unknown message type {kind!r}; expected one of {', '.join(KINDS)}")


def jambonz_socket(engine: Engine, settings: Settings, observer: SessionObserver) -> Handler:
    """The handler of `GET /ws/jambonz/tts`."""
    limits = SessionLimits.from_settings(settings)

    async def ws_jambonz(request: web.Request) -> web.StreamResponse:
        rate = requested_rate(request.query.get("sampleRate"), "sampleRate", JAMBONZ_RATES, JAMBONZ_RATES[0])
        voice = engine.resolve_voice(request.query.get("voice") or None, request.query.get("language")).id
        ws = websocket_response(settings)
        await ws.prepare(request)
        output = SocketOutput(
            PcmEncoder(rate), ws.send_bytes, ws.send_str, patience(settings), disconnector(request, ROUTE)
        )

        def send_event(event: SessionEvent) -> None:
            if isinstance(event, Error):
                output.send_now(json.dumps({"type": "error", "error": event.message}))

        session = Session(engine, output, send_event, limits, ROUTE, observer, voice)
        output.send_now(json.dumps({"type": "connect", "data": {"sample_rate": rate, "base64_encoding": False}}))
        try:
            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY) or not session.admit():
                    continue
                try:
                    if message.type == WSMsgType.BINARY:
                        raise InvalidRequest("message: send JSON text messages, not binary")
                    command = _command(decode_message(message.data, limits.max_message_bytes, "type"))
                    if command is not None:
                        session.dispatch(command)
                except MediaServerError as exc:
                    session.report_error(exc)
        finally:
            await close_session(session, output)
        return ws

    return ws_jambonz
