"""Speech routes: OpenAI-compatible `/v1/audio/speech` and `/v1/models`, `/tts` (a whole file),
and its streaming variants `/tts/stream` (SSE) and `/tts/pcm` (chunked raw PCM)."""

from __future__ import annotations

from aiohttp import web

from media_server.api.app_keys import ENGINE, SETTINGS
from media_server.api.audio_response import stream_audio, stream_events, whole_audio
from media_server.api.body import json_object, optional, required, with_default
from media_server.api.openai_names import OPENAI_MODELS, check_model, map_voice
from media_server.audio.codecs import PcmEncoder, audio_format
from media_server.audio.constants import OPENAI_PCM_RATE
from media_server.engine.parameters import LOCATORS, dictionary_locators, flag
from media_server.engine.types import Priority, SamplingParams, SynthesisRequest
from media_server.errors import InvalidRequest, UnsupportedFormat

SPEECH_FORMATS = ("wav", "pcm", "opus", "mp3", "flac", "aac")
SSE_FORMATS = ("pcm", "mp3", "opus", "aac", "flac", "wav")


def _sampling(body: dict[str, object]) -> SamplingParams:
    return SamplingParams(
        temperature=optional(body, "temperature", float),
        top_p=optional(body, "top_p", float),
        top_k=optional(body, "top_k", int),
        repetition_penalty=optional(body, "repetition_penalty", float),
        seed=optional(body, "seed", int),
    )


def openai_request(request: web.Request, body: dict[str, object], priority: Priority) -> SynthesisRequest:
    """OpenAI's speech body (`model`, `input`, `voice`, `speed`, `instructions`, ...) as a synthesis request."""
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    check_model(optional(body, "model", str), engine.backend_name)
    return SynthesisRequest(
        text=required(body, "input", str),
        voice=map_voice(required(body, "voice", str), settings.openai_voice_map),
        language=with_default(body, "language", str, "auto"),
        speed=with_default(body, "speed", float, 1.0),
        instructions=optional(body, "instructions", str),
        ssml=flag("ssml", body.get("ssml")),
        pronunciation_dictionaries=dictionary_locators(body.get(LOCATORS)),
        sampling=_sampling(body),
        priority=priority,
    )


async def openai_speech(request: web.Request) -> web.StreamResponse:
    body = await json_object(request)
    synth = openai_request(request, body, Priority.BATCH)
    spec = audio_format(with_default(body, "response_format", str, "mp3"), allowed=SPEECH_FORMATS)
    stream_format = with_default(body, "stream_format", str, "audio")
    if stream_format not in ("audio", "sse"):
        raise InvalidRequest(f"stream_format: {stream_format!r} is not supported; use audio or sse")
    encoder = spec.encoder(OPENAI_PCM_RATE)
    if stream_format == "sse":
        return await stream_events(request, synth, encoder, "speech_sse", openai_style=True)
    return await stream_audio(request, synth, encoder, "speech")


async def models(request: web.Request) -> web.Response:
    backend = request.app[ENGINE].backend_name
    ids = (*OPENAI_MODELS, backend)
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": i, "object": "model", "created": 0, "owned_by": "media-server"} for i in ids],
        }
    )


def _tts_request(body: dict[str, object], priority: Priority) -> SynthesisRequest:
    return SynthesisRequest(
        text=required(body, "text", str),
        voice=optional(body, "voice", str),
        language=with_default(body, "language", str, "auto"),
        speed=with_default(body, "speed", float, 1.0),
        instructions=optional(body, "instructions", str),
        ssml=flag("ssml", body.get("ssml")),
        pronunciation_dictionaries=dictionary_locators(body.get(LOCATORS)),
        sampling=_sampling(body),
        priority=priority,
    )


def _sample_rate(body: dict[str, object]) -> int | None:
    rate = optional(body, "sample_rate", int)
    if rate is not None and not 8000 <= rate <= 48000:
        raise UnsupportedFormat(f"sample_rate: {rate} Hz is outside 8000-48000")
    return rate


async def tts(request: web.Request) -> web.Response:
    body = await json_object(request)
    synth = _tts_request(body, Priority.BATCH)
    return await whole_audio(request, synth, with_default(body, "format", str, "wav"), _sample_rate(body))


async def tts_stream(request: web.Request) -> web.StreamResponse:
    body = await json_object(request)
    synth = _tts_request(body, Priority.REALTIME)
    spec = audio_format(with_default(body, "format", str, "pcm"), field="format", allowed=SSE_FORMATS)
    rate = _sample_rate(body) or request.app[ENGINE].resolve_voice(synth.voice).sample_rate
    return await stream_events(request, synth, spec.encoder(rate), "sse", openai_style=False)


async def tts_pcm(request: web.Request) -> web.StreamResponse:
    body = await json_object(request)
    synth = _tts_request(body, Priority.REALTIME)
    rate = _sample_rate(body) or request.app[ENGINE].resolve_voice(synth.voice).sample_rate
    return await stream_audio(request, synth, PcmEncoder(rate), "pcm", headers={"X-Sample-Rate": str(rate)})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/audio/speech", openai_speech)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/tts", tts)
    app.router.add_post("/tts/stream", tts_stream)
    app.router.add_post("/tts/pcm", tts_pcm)
