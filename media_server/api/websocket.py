"""`GET /ws/tts`: the data-channel protocol over a WebSocket, audio as binary messages.

Query: `format` (pcm | opus | mulaw; pcm is s16le), `sample_rate` (default
24000 for pcm, 48000 for opus, 8000 for mulaw), `voice`. JSON text messages
in both directions as on the data channel; each binary message is the encoded
audio of one engine chunk (for opus, pages of one Ogg stream per connection).
"""

from __future__ import annotations

from aiohttp import WSMsgType, web

from media_server.api.keys import ENGINE, METRICS, SETTINGS
from media_server.api.security import add_websocket_route
from media_server.api.socket_guard import disconnector, patience, websocket_response
from media_server.api.socket_output import SocketOutput
from media_server.audio.codecs import audio_format
from media_server.conversation import Conversation
from media_server.errors import InvalidRequest

WS_FORMATS = ("pcm", "opus", "mulaw")
DEFAULT_RATES = {"pcm": 24000, "opus": 48000, "mulaw": 8000}
ROUTE = "ws"


def _query_rate(request: web.Request, default: int) -> int:
    raw = request.query.get("sample_rate")
    if raw is None:
        return default
    if not raw.isdigit() or not 8000 <= int(raw) <= 48000:
        raise InvalidRequest(f"sample_rate: {raw!r} is not a rate in 8000-48000 Hz")
    return int(raw)


async def ws_tts(request: web.Request) -> web.WebSocketResponse:
    engine, settings, metrics = request.app[ENGINE], request.app[SETTINGS], request.app[METRICS]
    name = request.query.get("format", "pcm")
    encoder = audio_format(name, field="format", allowed=WS_FORMATS).encoder(
        _query_rate(request, DEFAULT_RATES.get(name, 24000))
    )
    voice = request.query.get("voice")
    if voice:
        engine.resolve_voice(voice)
    ws = websocket_response(settings)
    await ws.prepare(request)
    conversation = Conversation(engine, settings, voice=voice, route=ROUTE, observer=metrics)
    output = SocketOutput(
        encoder,
        ws.send_bytes,
        ws.send_str,
        conversation.on_playout,
        patience(settings),
        disconnector(request, ROUTE),
    )
    conversation.bind(output.send_now)
    conversation.attach(output)
    with metrics.session(ROUTE):
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    conversation.handle(message.data)
                elif message.type == WSMsgType.BINARY and conversation.admit():
                    conversation.send_error(InvalidRequest("message: send JSON text messages, not binary"))
        finally:
            try:
                await conversation.close()
            finally:  # the client going away cancels this handler, maybe while the conversation closes
                await output.close()
    return ws


def add_routes(app: web.Application) -> None:
    add_websocket_route(app, "/ws/tts", ws_tts)
