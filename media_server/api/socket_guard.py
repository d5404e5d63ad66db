"""What every WebSocket route shares: its frame limit and its heartbeat.

A message over `MAX_MESSAGE_BYTES` is answered with an `error` event and the
session goes on (the protocol checks the size); aiohttp itself refuses only
frames `FRAME_HEADROOM` times larger (close 1009), which no client of the
protocol sends.
"""

from __future__ import annotations

from aiohttp import web

from media_server.config import Settings

FRAME_HEADROOM = 4
HEARTBEAT_S = 30.0


def websocket_response(settings: Settings) -> web.WebSocketResponse:
    return web.WebSocketResponse(max_msg_size=settings.max_message_bytes * FRAME_HEADROOM, heartbeat=HEARTBEAT_S)
