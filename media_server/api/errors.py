"""The one place errors become HTTP responses: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.typedefs import Handler

from media_server.errors import MediaServerError
from media_server.observability.metrics import CLIENT_CLOSED_STATUS
from signaling.errors import SignalingError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (MediaServerError, SignalingError) as exc:
        retry = exc.retry_after_s
        headers = {"Retry-After": str(max(1, round(retry)))} if retry is not None else None
        return error_response(exc.status, exc.code, exc.message, headers)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(413, "body_too_large", f"body: {exc.text}")
    except BadHttpMessage as exc:
        return error_response(400, "invalid_request", f"body: malformed ({exc.message})")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except Exception as exc:
        if isinstance(exc, ConnectionResetError) and (request.transport is None or request.transport.is_closing()):
            return web.Response(status=CLIENT_CLOSED_STATUS)  # the client left mid-response: nobody to tell
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed to handle the request")
