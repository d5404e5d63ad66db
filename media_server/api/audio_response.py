"""Sending an engine stream as an HTTP response, streamed or whole."""

from __future__ import annotations

import logging

from aiohttp import web

from media_server.api.keys import ENGINE
from media_server.audio.codecs import StreamEncoder
from media_server.audio.resample import Resampler
from media_server.audio.wav import wav_header
from media_server.engine.types import SynthesisRequest
from media_server.errors import MediaServerError, UnsupportedFormat

log = logging.getLogger(__name__)

WHOLE_FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm"}


async def stream_audio(
    request: web.Request, synth: SynthesisRequest, encoder: StreamEncoder, sample_rate: int
) -> web.StreamResponse:
    """Stream encoded audio with chunked transfer as the engine makes it.

    Admission and the first step happen before the headers go out, so a refusal
    or an early failure is still a proper JSON error with its status.
    """
    async with request.app[ENGINE].stream(synth) as chunks:
        first = await anext(chunks, None)
        response = web.StreamResponse(
            headers={"Content-Type": encoder.content_type, "X-Request-Id": synth.id}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        resampler = Resampler(first.sample_rate if first else sample_rate, sample_rate)
        try:
            await response.write(encoder.header())
            if first is not None:
                await response.write(encoder.encode(resampler.process(first.pcm)))
            async for chunk in chunks:
                await response.write(encoder.encode(resampler.process(chunk.pcm)))
            await response.write(encoder.encode(resampler.flush()) + encoder.finish())
        except MediaServerError as exc:
            log.warning("request %s failed mid-stream: %s", synth.id, exc.message)
        except ConnectionError:
            log.info("client of %s went away mid-stream", synth.id)
        return response


async def whole_audio(
    request: web.Request, synth: SynthesisRequest, audio_format: str, sample_rate: int | None = None
) -> web.Response:
    """The whole utterance as one `wav` file or `pcm` body (the backend's rate unless `sample_rate`)."""
    if audio_format not in WHOLE_FORMATS:
        raise UnsupportedFormat(
            f"format: {audio_format!r} is not supported; use one of {', '.join(WHOLE_FORMATS)}"
        )
    parts: list[bytes] = []
    async with request.app[ENGINE].stream(synth) as chunks:
        rate = sample_rate or chunks.sample_rate
        resampler = Resampler(chunks.sample_rate, rate)
        async for chunk in chunks:
            parts.append(resampler.process(chunk.pcm).tobytes())
        parts.append(resampler.flush().tobytes())
    data = b"".join(parts)
    header = wav_header(rate, len(data)) if audio_format == "wav" else b""
    return web.Response(
        body=header + data,
        content_type=WHOLE_FORMATS[audio_format],
        headers={"X-Request-Id": synth.id, "X-Sample-Rate": str(rate)},
    )
