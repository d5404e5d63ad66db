"""Speech routes: OpenAI-compatible `/v1/audio/speech` and the prototype's `/tts`."""

from __future__ import annotations

from aiohttp import web

from media_server.api.audio_response import stream_audio, whole_audio
from media_server.api.body import json_object, optional, required, with_default
from media_server.audio.codecs import get_encoder
from media_server.audio.constants import OPENAI_PCM_RATE
from media_server.engine.types import Priority, SamplingParams, SynthesisRequest

# OpenAI's voice names speak with the default voice until a mapping table is configured.
OPENAI_VOICES = frozenset(
    "alloy ash ballad cedar coral echo fable marin nova onyx sage shimmer verse".split()
)


def _voice(name: str | None) -> str | None:
    return None if name in OPENAI_VOICES else name


async def openai_speech(request: web.Request) -> web.StreamResponse:
    body = await json_object(request)
    text = required(body, "input", str)
    audio_format = with_default(body, "response_format", str, "wav")
    encoder = get_encoder(audio_format, OPENAI_PCM_RATE)
    synth = SynthesisRequest(
        text=text,
        voice=_voice(required(body, "voice", str)),
        speed=with_default(body, "speed", float, 1.0),
        priority=Priority.BATCH,
    )
    return await stream_audio(request, synth, encoder, OPENAI_PCM_RATE)


async def tts(request: web.Request) -> web.Response:
    body = await json_object(request)
    synth = SynthesisRequest(
        text=required(body, "text", str),
        voice=optional(body, "voice", str),
        language=with_default(body, "language", str, "auto"),
        speed=with_default(body, "speed", float, 1.0),
        sampling=SamplingParams(
            temperature=optional(body, "temperature", float), top_p=optional(body, "top_p", float)
        ),
        priority=Priority.BATCH,
    )
    return await whole_audio(request, synth, with_default(body, "format", str, "wav"))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/audio/speech", openai_speech)
    app.router.add_post("/tts", tts)
