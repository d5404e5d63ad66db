"""`GET /ws/tts`: the data-channel protocol over a WebSocket, audio as binary messages.

Query: `format` (pcm | opus | mulaw | alaw; pcm is s16le), `sample_rate`
(default 24000 for pcm, 48000 for opus, 8000 for mulaw and alaw), `voice`. JSON text messages
in both directions as on the data channel; each binary message is the encoded
audio of one engine chunk (for opus, pages of one Ogg stream per connection).
"""

from __future__ import annotations

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from media_server.audio.codecs import audio_format
from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest
from media_server.session.events import json_sink
from media_server.session.session import Session, SessionLimits, SessionObserver
from media_server.transports.socket_guard import close_session, disconnector, patience, websocket_response
from media_server.transports.socket_output import SocketOutput

PATH = "/ws/tts"
WS_FORMATS = ("pcm", "opus", "mulaw", "alaw")
DEFAULT_RATES = {"pcm": 24000, "opus": 48000, "mulaw": 8000, "alaw": 8000}
ROUTE = "ws"


def _query_rate(request: web.Request, default: int) -> int:
    raw = request.query.get("sample_rate")
    if raw is None:
        return default
    if not raw.isdigit() or not 8000 <= int(raw) <= 48000:
        raise InvalidRequest(f"sample_rate: {raw!r} is not a rate in 8000-48000 Hz")
    return int(raw)


def tts_socket(engine: Engine, settings: Settings, observer: SessionObserver) -> Handler:
    """The handler of `GET /ws/tts`."""
    limits = SessionLimits.from_settings(settings)

    async def ws_tts(request: web.Request) -> web.StreamResponse:
        name = request.query.get("format", "pcm")
        encoder = audio_format(name, field="format", allowed=WS_FORMATS).encoder(
            _query_rate(request, DEFAULT_RATES.get(name, 24000))
        )
        voice = request.query.get("voice")
        if voice:
            engine.resolve_voice(voice)
        ws = websocket_response(settings)
        await ws.prepare(request)
        output = SocketOutput(encoder, ws.send_bytes, ws.send_str, patience(settings), disconnector(request, ROUTE))
        session = Session(engine, output, json_sink(output.send_now), limits, ROUTE, observer, voice)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    session.handle(message.data)
                elif message.type == WSMsgType.BINARY and session.admit():
                    session.report_error(InvalidRequest("message: send JSON text messages, not binary"))
        finally:
            await close_session(session, output)
        return ws

    return ws_tts
