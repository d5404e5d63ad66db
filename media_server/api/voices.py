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

from aiohttp import web

from media_server.api.app_keys import ENGINE, SETTINGS
from media_server.api.audio_response import whole_audio
from media_server.api.multipart import read_form
from media_server.api.remote_audio import fetch_reference
from media_server.audio.decode import decode_audio
from media_server.engine.types import Priority, SynthesisRequest, Voice
from media_server.errors import InvalidRequest

TEXT_FIELDS = ("transcript", "name", "text", "audio_url", "language", "format")


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
    voice = await _clone(request, *await read_form(request, "audio", TEXT_FIELDS))
    return web.json_response(asdict(voice), status=201)


async def delete_voice(request: web.Request) -> web.Response:
    await request.app[ENGINE].delete_voice(request.match_info["voice_id"])
    return web.json_response({"status": "deleted"})


async def clone_and_speak(request: web.Request) -> web.Response:
    audio, fields = await read_form(request, "audio", TEXT_FIELDS)
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
