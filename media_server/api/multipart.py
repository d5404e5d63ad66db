"""Reading multipart/form-data bodies (uploads: voice references, PLS files) within the upload limit.

The whole body is held to `MAX_UPLOAD_BYTES` (multipart bypasses aiohttp's own
body limit, and a chunked body announces no length), and each text field to
`MAX_FIELD_BYTES`.
"""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from media_server.api.app_keys import SETTINGS
from media_server.errors import BodyTooLarge, InvalidRequest, TextTooLong

MAX_FIELD_BYTES = 64 * 1024


async def read_form(
    request: web.Request, file_field: str, text_fields: tuple[str, ...]
) -> tuple[bytes | None, dict[str, str]]:
    """The uploaded `file_field` bytes and the `text_fields` of a multipart body, within `MAX_UPLOAD_BYTES`."""
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest(f"body: send multipart/form-data with a `{file_field}` file")
    limit = request.app[SETTINGS].max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body: {request.content_length} bytes is over the limit of {limit} (MAX_UPLOAD_BYTES)")
    reader = await request.multipart()
    upload: bytes | None = None
    fields: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        _check_received(request, limit)
        if not isinstance(part, BodyPartReader):
            raise InvalidRequest("body: nested multipart is not supported")
        if part.name == file_field:
            upload = await _read_part(request, part, file_field)
        elif part.name in text_fields:
            text = await _read_part(request, part, part.name, MAX_FIELD_BYTES)
            fields[part.name] = text.decode("utf-8", "replace")
        else:
            raise InvalidRequest(f"{part.name}: unknown field; expected {', '.join((file_field, *text_fields))}")
    return upload, fields


def _check_received(request: web.Request, limit: int) -> None:
    """BodyTooLarge once more than `limit` bytes of the body have arrived (chunked bodies announce no length)."""
    if request.content.total_bytes > limit:
        raise BodyTooLarge(f"body: over the limit of {limit} bytes (MAX_UPLOAD_BYTES)")


async def _read_part(request: web.Request, part: BodyPartReader, name: str, limit: int | None = None) -> bytes:
    """The bytes of `part`, within the upload limit and, when given, within `limit` bytes of its own."""
    data = bytearray()
    while chunk := await part.read_chunk():
        _check_received(request, request.app[SETTINGS].max_upload_bytes)
        data += chunk
        if limit is not None and len(data) > limit:
            raise TextTooLong(f"{name}: over the limit of {limit} bytes")
    return bytes(data)
