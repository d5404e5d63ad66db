"""Structured logs: one JSON object per line, with the ids bound to the current context.

Every line carries `time`, `level`, `logger`, `message`, the ids bound with
`bound(...)` (a ContextVar, so they follow asyncio tasks and `to_thread`
calls started inside the block) and any `extra=` fields. Privacy rule: log a
text's length, never the text; secret-looking fields are masked and a `text`
field becomes `text_chars` unless the line is DEBUG.

`request_id_middleware` binds `request_id` for each HTTP request (the
client's `X-Request-ID` when it is well formed, else a fresh one) and the
`echo_request_id` signal returns it in the response; `LatencyBreakdown` logs
where one utterance's time went, in one line.

A line is one line whatever a client sent: control characters (C0, DEL, C1)
and the Unicode line and paragraph separators in messages and fields are
written as `\\uXXXX` escapes, so an id with a newline cannot forge a line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = [
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "LatencyBreakdown",
    "TextFormatter",
    "bound",
    "configure_logging",
    "echo_request_id",
    "request_id_middleware",
]

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SECRET_FIELDS = frozenset({"api_key", "authorization", "password", "secret", "token"})
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_LINE_BREAKERS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_ESCAPES = {code: f"\\u{code:04x}" for code in _LINE_BREAKERS}

_ids: ContextVar[Mapping[str, str]] = ContextVar("log_ids", default=MappingProxyType({}))


@contextmanager
def bound(**ids: str) -> Iterator[None]:
    """Adds `ids` (e.g. request_id=..., session_id=...) to every log line inside the block."""
    token = _ids.set(MappingProxyType({**_ids.get(), **ids}))
    try:
        yield
    finally:
        _ids.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The bound ids and `extra=` fields of `record`, made safe to log at its level."""
    fields: dict[str, Any] = dict(_ids.get())
    for key, value in vars(record).items():
        if key in _RECORD_FIELDS or key.startswith("_"):  # private: another library's (Ray's `_ray_timestamp_ns`)
            continue
        if key in _SECRET_FIELDS:
            fields[key] = "***"
        elif key == "text" and isinstance(value, str) and record.levelno > logging.DEBUG:
            fields["text_chars"] = len(value)
        else:
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False).translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """For a terminal: the usual line, then the ids and extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        line = super().formatMessage(record)
        return (f"{line} [{pairs}]" if pairs else line).translate(_ESCAPES)


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs, so calling it again replaces it."""


def configure_logging(level: str, json: bool, stream: TextIO | None = None) -> None:
    """Send the root logger's records at `level` and above to `stream` (stderr), as JSON or text."""
    numeric = logging.getLevelName(level.upper())
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # ICE candidate chatter at INFO drowns the server's own lines.
    logging.getLogger("aioice").setLevel(max(logging.WARNING, numeric))


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Binds `request_id` while the request is handled: the client's `X-Request-ID` or a new one."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _VALID_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    with bound(request_id=request_id):
        return await handler(request)


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` signal: every response, streamed ones too, carries `X-Request-ID`."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


@dataclass(frozen=True)
class LatencyBreakdown:
    """Where one utterance's time went, in seconds from receiving its text unless named a duration.

    `queue_wait_s`, `text_prep_s` and `first_chunk_s` are durations
    of those stages before the first audio; `first_send_s` is when the first
    audio left (the server-side TTFA), `total_s` when the last did.
    """

    utterance_id: str
    route: str
    text_chars: int
    text_prep_s: float
    queue_wait_s: float
    first_chunk_s: float
    first_send_s: float
    total_s: float
    audio_s: float

    def fields(self) -> dict[str, str | int | float]:
        """The breakdown as log fields, times in milliseconds."""
        return {
            "utterance_id": self.utterance_id,
            "route": self.route,
            "text_chars": self.text_chars,
            "text_prep_ms": _ms(self.text_prep_s),
            "queue_wait_ms": _ms(self.queue_wait_s),
            "first_chunk_ms": _ms(self.first_chunk_s),
            "first_send_ms": _ms(self.first_send_s),
            "total_ms": _ms(self.total_s),
            "audio_ms": _ms(self.audio_s),
        }

    def log(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        """One line: a readable message, and every number as a field."""
        logger.log(
            level,
            "utterance %s on %s: first audio after %.1f ms (text %.1f, queue %.1f, first chunk %.1f), "
            "%.0f ms of audio in %.0f ms",
            self.utterance_id,
            self.route,
            self.first_send_s * 1000,
            self.text_prep_s * 1000,
            self.queue_wait_s * 1000,
            self.first_chunk_s * 1000,
            self.audio_s * 1000,
            self.total_s * 1000,
            extra=self.fields(),
        )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
