"""What every WebSocket route shares: its frame limit, its heartbeat, disconnecting a client that does not read,
and closing a socket's session and output.

A message over `MAX_MESSAGE_BYTES` is answered with an `error` event and the
session goes on (the protocol checks the size); aiohttp itself refuses only
frames `FRAME_HEADROOM` times larger (close 1009), which no client of the
protocol sends. A client that does not read is dropped at once: the transport
is aborted, so nothing more is written to it and its buffer is freed (a close
handshake would wait on the very socket that is not being read).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from media_server.config import Settings
from media_server.session.session import Session
from media_server.transports.socket_output import Patience, SocketOutput

log = logging.getLogger(__name__)

FRAME_HEADROOM = 4
HEARTBEAT_S = 30.0


def websocket_response(settings: Settings) -> web.WebSocketResponse:
    return web.WebSocketResponse(max_msg_size=settings.max_message_bytes * FRAME_HEADROOM, heartbeat=HEARTBEAT_S)


def patience(settings: Settings) -> Patience:
    return Patience(max_unsent_bytes=settings.max_unsent_bytes, send_timeout_s=settings.send_timeout)


def disconnector(request: web.Request, route: str) -> Callable[[str], None]:
    """The `on_not_reading` of a socket output: log why, then abort the request's connection."""

    def disconnect(why: str) -> None:
        log.warning("disconnecting a %s client that does not read: %s", route, why)
        if request.transport is not None:
            request.transport.abort()

    return disconnect


async def close_session(session: Session, output: SocketOutput) -> None:
    """Close a socket's session, then its output: the output too when the client going away cancels the handler
    while the session closes."""
    try:
        await session.close()
    finally:
        await output.close()
