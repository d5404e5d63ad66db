"""What the telephony media WebSockets share: checking the URL, the upgrade, the loop over messages, the hang-up.

A protocol module hands `media_socket` an `accept(request)` that checks the
URL's query (a bad one is a 400 before the upgrade) and returns how to open
its `MediaStream` on the upgraded socket; the stream turns each message into
what it means for its call (the call core, `call.py`, does the rest). A
message the protocol cannot go on after raises `HangUp`: the socket closes
with that code and reason. However the socket closes, the call hangs up.
`JsonMediaStream` is the base of the protocols whose messages are JSON
objects naming their kind in `event` (Twilio, Telnyx, Plivo).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler

from media_server.config import Settings
from media_server.errors import InvalidRequest, MediaServerError
from media_server.session.commands import decode_message
from media_server.transports.call import Call, CallOrigin, CallServices
from media_server.transports.socket_guard import disconnector, websocket_response

MAX_REASON_BYTES = 120  # a close frame's reason may take 123 bytes

Owner = Callable[[web.Request], str | None]
"""Who a request speaks for (the API key's principal, or the client's address)."""


class HangUp(Exception):
    """End the media connection: `reason` says why, in the close frame."""

    def __init__(self, reason: str, code: int = WSCloseCode.POLICY_VIOLATION) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class MediaStream(Protocol):
    """One media connection's protocol state."""

    @property
    def call(self) -> Call | None:
        """The connection's call, once it has started."""

    def on_text(self, data: str) -> None: ...

    def on_binary(self, data: bytes) -> None: ...


OpenStream = Callable[[web.WebSocketResponse, CallOrigin], MediaStream]


class JsonMediaStream:
    """A media stream of JSON events: each message counts against the call's rate, and one that is not JSON,
    is binary, or that `handle` refuses is answered with an `error` (the call's events are the protocol's)."""

    def __init__(self, call: Call, max_message_bytes: int) -> None:
        self.call = call
        self._max_message_bytes = max_message_bytes

    def on_text(self, data: str) -> None:
        if not self.call.admit():
            return
        try:
            self.handle(decode_message(data, self._max_message_bytes, "event"))
        except MediaServerError as exc:
            self.call.report_error(exc)

    def on_binary(self, data: bytes) -> None:
        if self.call.admit():
            self.call.report_error(InvalidRequest("message: send JSON text messages, not binary"))

    def handle(self, message: dict[str, Any]) -> None:
        """Carry out one event; raises MediaServerError when it is refused."""
        raise NotImplementedError


def media_socket(
    services: CallServices, settings: Settings, route: str, owner: Owner, accept: Callable[[web.Request], OpenStream]
) -> Handler:
    """The handler of one protocol's media WebSocket; `route` names its calls in metrics and logs."""

    async def media_ws(request: web.Request) -> web.StreamResponse:
        open_stream = accept(request)
        voice = request.query.get("voice")
        if voice:
            services.engine.resolve_voice(voice)
        ws = websocket_response(settings)
        await ws.prepare(request)
        stream = open_stream(ws, CallOrigin(services, route, owner(request), voice, disconnector(request, route)))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    stream.on_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    stream.on_binary(message.data)
        except HangUp as exc:
            await ws.close(code=exc.code, message=exc.reason.encode()[:MAX_REASON_BYTES])
        finally:
            if stream.call is not None:
                await stream.call.close()
        return ws

    return media_ws
