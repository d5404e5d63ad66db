"""The Wyoming protocol's framing (Home Assistant's voice services), read and written without its package.

An event is a JSON header line `{"type", "version", "data_length"?,
"payload_length"?}` (older peers put `data` in the header itself), then
`data_length` bytes of JSON data, then `payload_length` bytes of payload (raw
audio). Every length read is bounded, so a peer cannot make the server
buffer more than `max_bytes` for one event.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from media_server.errors import InvalidRequest
from media_server.json_input import decode_json

VERSION = "1.7.0"
"""The protocol version this server speaks (the `synthesize-*` streaming events)."""


@dataclass(frozen=True)
class WyomingEvent:
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> WyomingEvent | None:
    """The next event; None at the end of the stream. InvalidRequest for one that is malformed or too large."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise InvalidRequest("event: the connection ended inside an event header") from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise InvalidRequest(f"event: a header line over {max_bytes} bytes") from exc
    header = decode_json(line, "event")
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise InvalidRequest("event: a header is a JSON object with a 'type'")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidRequest("data: must be a JSON object")
    data_length = _length(header, "data_length", max_bytes)
    if data_length:
        extra = decode_json(await reader.readexactly(data_length), "data")
        if not isinstance(extra, dict):
            raise InvalidRequest("data: must be a JSON object")
        data = {**data, **extra}
    payload_length = _length(header, "payload_length", max_bytes)
    payload = await reader.readexactly(payload_length) if payload_length else b""
    return WyomingEvent(header["type"], data, payload)


def _length(header: dict[str, Any], name: str, max_bytes: int) -> int:
    value = header.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max_bytes:
        raise InvalidRequest(f"{name}: {value!r} is not a length in [0, {max_bytes}]")
    return value


def encode_event(event: WyomingEvent) -> bytes:
    header: dict[str, Any] = {"type": event.type, "version": VERSION}
    data = json.dumps(event.data, ensure_ascii=False).encode() if event.data else b""
    if data:
        header["data_length"] = len(data)
    if event.payload:
        header["payload_length"] = len(event.payload)
    return json.dumps(header, ensure_ascii=False).encode() + b"\n" + data + event.payload
