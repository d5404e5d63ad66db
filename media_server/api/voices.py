"""Voice routes: list, clone (`POST /v1/voices`), delete, and the one-shot `POST /clone`.

Cloning takes multipart form data: `audio` (a file in any format PyAV
reads) or `audio_url` (fetched only when remote URLs are enabled and
allow-listed), `transcript` (what the reference says; without it only the
voice's timbre is cloned), `name`. The whole body is held to
`MAX_UPLOAD_BYTES` (multipart bypasses aiohttp's own body limit), and the
reference is decoded in a worker thread, never on the event loop. The clone
prompt is cached by a hash of the reference, in memory and on disk, so
`/clone` with the same reference reuses it and a restart does not recompute
it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import BodyPartReader, web

from media_server.api.app_keys import ENGINE, SETTINGS
from media_server.api.audio_response import whole_audio
from media_server.api.remote_audio import fetch_reference
from media_server.audio.decode import decode_audio
from media_server.engine.types import Priority, SynthesisRequest, Voice
from media_server.errors import BodyTooLarge, InvalidRequest, TextTooLong

MAX_FIELD_BYTES = 64 * 1024
TEXT_FIELDS = ("transcript", "name", "text", "audio_url", "language", "format")


async def _form(request: web.Request) -> tuple[bytes | None, dict[str, str]]:
    """The uploaded `audio` bytes and the text fields of a multipart body, within `MAX_UPLOAD_BYTES`."""
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest("body: send multipart/form-data with an `audio` file (or `audio_url`)")
    limit = request.app[SETTINGS].max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body: {request.content_length} bytes is over the limit of {limit} (MAX_UPLOAD_BYTES)")
    reader = await request.multipart()
    audio: bytes | None = None
    fields: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        _check_received(request, limit)
        if not isinstance(part, BodyPartReader):
            raise InvalidRequest("body: nested multipart is not supported")
        if part.name == "audio":
            audio = await _read_part(request, part, "audio")
        elif part.name in TEXT_FIELDS:
            text = await _read_part(request, part, part.name, MAX_FIELD_BYTES)
            fields[part.name] = text.decode("utf-8", "replace")
        else:
            raise InvalidRequest(f"{part.name}: unknown field; expected audio, {', '.join(TEXT_FIELDS)}")
    return audio, fields


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


async def _clone(request: web.Request, audio: bytes | None, fields: dict[str, str]) -> Voice:
    if audio is None and "audio_url" in fields:
        audio = await fetch_reference(fields["audio_url"], request.app[SETTINGS])
    if audio is None:
        raise InvalidRequest("audio: required, a reference recording (or audio_url)")
    pcm, rate = await asyncio.to_thread(decode_audio, audio, "audio")
    transcript = fields.get("transcript") or None
    name = fields.get("name") or "cloned voice"
    return await request.app[ENGINE].create_voice(pcm, rate, transcript, name)


async def list_voices(request: web.Request) -> web.Response:
    return web.json_response({"voices": [asdict(voice) for voice in request.app[ENGINE].voices()]})


async def audio_voices(request: web.Request) -> web.Response:
    """`GET /v1/audio/voices`, as Kokoro-FastAPI and vLLM-Omni serve it: the voice ids alone."""
    return web.json_response({"voices": [voice.id for voice in request.app[ENGINE].voices()]})


async def create_voice(request: web.Request) -> web.Response:
    voice = await _clone(request, *await _form(request))
    return web.json_response(asdict(voice), status=201)


async def delete_voice(request: web.Request) -> web.Response:
    await request.app[ENGINE].delete_voice(request.match_info["voice_id"])
    return web.json_response({"status": "deleted"})


async def clone_and_speak(request: web.Request) -> web.Response:
    audio, fields = await _form(request)
    text = fields.get("text", "")
    request.app[ENGINE].validate_text(text)
    voice = await _clone(request, audio, fields)
    synth = SynthesisRequest(
        text=text, voice=voice.id, language=fields.get("language") or "auto", priority=Priority.BATCH
    )
    return await whole_audio(request, synth, fields.get("format") or "wav")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/voices", list_voices)
    app.router.add_get("/v1/audio/voices", audio_voices)
    app.router.add_post("/v1/voices", create_voice)
    app.router.add_delete("/v1/voices/{voice_id}", delete_voice)
    app.router.add_post("/clone", clone_and_speak)
