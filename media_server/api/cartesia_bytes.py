"""`POST /tts/bytes`: Cartesia's one-shot TTS, the audio streamed back as it is made (real-time priority).

The body is a Cartesia generation request (`media_server.protocols.cartesia`:
`transcript`, `voice`, `output_format` with container `raw` or `wav`, ...);
the answer is the encoded audio, chunked. Auth as everywhere: `X-API-Key`,
as Cartesia's clients send it, or `Authorization: Bearer`.
"""

from __future__ import annotations

from aiohttp import web

from media_server.api.audio_response import stream_audio
from media_server.api.body import json_object
from media_server.audio.codecs import WavEncoder
from media_server.engine.types import Priority, SynthesisRequest
from media_server.errors import InvalidRequest
from media_server.protocols import cartesia

PATH = "/tts/bytes"


async def tts_bytes(request: web.Request) -> web.StreamResponse:
    generation = cartesia.parse_generation(await json_object(request), containers=("raw", "wav"))
    if not generation.transcript.strip():
        raise InvalidRequest("transcript: must not be empty")
    synth = SynthesisRequest(
        text=generation.transcript,
        voice=generation.voice,
        language=generation.language,
        speed=generation.speed,
        priority=Priority.REALTIME,
        pronunciation_dictionaries=generation.dictionaries,
    )
    if generation.container == "wav":
        if generation.encoding != "pcm_s16le":
            raise InvalidRequest("output_format.encoding: a wav container holds pcm_s16le here")
        return await stream_audio(request, synth, WavEncoder(generation.sample_rate), "cartesia_bytes")
    return await stream_audio(request, synth, generation.encoder(), "cartesia_bytes")


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, tts_bytes)
