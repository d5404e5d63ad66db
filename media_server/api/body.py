"""Reading and validating JSON request bodies into typed fields."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from media_server.errors import InvalidRequest
from media_server.json_input import decode_json

T = TypeVar("T")


async def json_object(request: web.Request) -> dict[str, Any]:
    body = decode_json(await request.read(), "body")
    if not isinstance(body, dict):
        raise InvalidRequest("body: expected a JSON object")
    return body


def optional(body: dict[str, Any], name: str, kind: type[T]) -> T | None:
    """`body[name]` checked against `kind` (ints accepted for floats); None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidRequest(f"{name}: must be a {kind.__name__}, got {type(value).__name__}")
    return value


def with_default(body: dict[str, Any], name: str, kind: type[T], default: T) -> T:
    value = optional(body, name, kind)
    return default if value is None else value


def required(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = optional(body, name, kind)
    if value is None:
        raise InvalidRequest(f"{name}: required")
    return value
