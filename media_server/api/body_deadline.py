"""A deadline on receiving a request body: a client that sends it too slowly gets 408 `body_timeout`.

aiohttp drops a client whose headers dawdle (its keep-alive timer), but
nothing bounds the body: a body trickled a byte at a time held a connection
and a handler for as long as the client liked. The deadline runs from the
moment the request reaches the routes until the body's last byte has
arrived, however the handler reads it (JSON, multipart, not at all), so no
body takes longer than `BODY_TIMEOUT` seconds. Requests without a body, and
responses still streaming after their body arrived, are not limited.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from media_server.errors import BodyTimeout


def body_deadline(timeout_s: float) -> Middleware:
    """The middleware that answers 408 when a body is still arriving `timeout_s` after its request (0: off)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = request.content
        if timeout_s <= 0 or body.is_eof():
            return await handler(request)
        deadline = asyncio.timeout(timeout_s)
        receiving = True

        def received() -> None:
            if receiving and not deadline.expired():
                deadline.reschedule(None)

        try:
            async with deadline:
                body.on_eof(received)
                return await handler(request)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise BodyTimeout(f"body: not received within {timeout_s:g} s (BODY_TIMEOUT)") from exc
        finally:
            receiving = False

    return middleware
