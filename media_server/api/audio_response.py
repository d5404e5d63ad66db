"""Sending an engine stream over HTTP: encoded bytes, SSE events, or a whole file.

Admission and the first synthesis step happen before the headers go out, so a
refusal or an early failure is still a proper JSON error with its status.
Encoding runs in a worker thread, chunk by chunk, so it overlaps synthesis of
the next chunk and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from media_server.api.app_keys import ENGINE, METRICS
from media_server.audio.codecs import StreamEncoder
from media_server.audio.resample import Resampler
from media_server.audio.wav import wav_header
from media_server.engine.seam import AudioStream
from media_server.engine.types import SynthesisRequest
from media_server.errors import MediaServerError, UnsupportedFormat

log = logging.getLogger(__name__)

WHOLE_FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm"}


async def encoded_pieces(chunks: AudioStream, encoder: StreamEncoder) -> AsyncIterator[bytes]:
    """The encoder's output for each engine chunk (resampled to its rate), then its tail."""
    resampler = Resampler(chunks.sample_rate, encoder.sample_rate)
    yield encoder.header()
    async for chunk in chunks:
        yield await asyncio.to_thread(encoder.encode, resampler.process(chunk.pcm))
    yield await asyncio.to_thread(lambda: encoder.encode(resampler.flush()) + encoder.finish())


async def _started(request: web.Request, synth: SynthesisRequest) -> AudioStream:
    """Admit `synth` and wait for its first chunk to be ready (errors still map to a status)."""
    chunks = request.app[ENGINE].stream(synth)
    await chunks.wait_ready()
    return chunks


def _first_audio(request: web.Request, route: str, synth: SynthesisRequest) -> float:
    """Record the route's time to first audio; returns the moment."""
    now = time.monotonic()
    request.app[METRICS].observe_ttfa(route, now - synth.received_at)
    return now


async def stream_audio(
    request: web.Request,
    synth: SynthesisRequest,
    encoder: StreamEncoder,
    route: str,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Encoded audio with chunked transfer, written as the engine makes it."""
    async with await _started(request, synth) as chunks:
        response = web.StreamResponse(headers={"Content-Type": encoder.content_type, **(headers or {})})
        response.enable_chunked_encoding()
        await response.prepare(request)
        first_at: float | None = None
        try:
            async for piece in encoded_pieces(chunks, encoder):
                if piece:
                    first_at = first_at or _first_audio(request, route, synth)
                    await response.write(piece)
        except MediaServerError as exc:
            log.warning("request %s failed mid-stream: %s", synth.id, exc.message)
            break_off(request)
        return response


def break_off(request: web.Request) -> None:
    """End a streamed body that failed so the client can tell: the connection closes without the final chunk.

    The status line went out with the first audio, so an error status can no longer be sent;
    a chunked body cut short is what every HTTP client reports as an incomplete transfer.
    """
    if request.transport is not None:
        request.transport.abort()


class EventStream:
    """A `text/event-stream` response."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    async def open(self) -> None:
        await self.response.prepare(self._request)

    async def send(self, data: dict[str, Any], event: str | None = None) -> None:
        head = f"event: {event}\n" if event else ""
        await self.response.write(f"{head}data: {json.dumps(data)}\n\n".encode())


async def stream_events(
    request: web.Request, synth: SynthesisRequest, encoder: StreamEncoder, route: str, openai_style: bool
) -> web.StreamResponse:
    """Audio as SSE: OpenAI's `speech.audio.delta`/`done`, or `/tts/stream`'s own `audio`/`done` events."""
    async with await _started(request, synth) as chunks:
        events = EventStream(request)
        await events.open()
        first_at: float | None = None
        audio_bytes = 0
        index = 0
        try:
            async for piece in encoded_pieces(chunks, encoder):
                if not piece:
                    continue
                first_at = first_at or _first_audio(request, route, synth)
                audio_bytes += len(piece)
                audio = base64.b64encode(piece).decode()
                if openai_style:
                    await events.send({"type": "speech.audio.delta", "audio": audio})
                else:
                    await events.send({"index": index, "audio": audio, "sample_rate": encoder.sample_rate}, "audio")
                index += 1
        except MediaServerError as exc:
            await events.send({"code": exc.code, "message": exc.message}, "error")
            return events.response
        timings = {
            "ttfa_ms": round(((first_at or time.monotonic()) - synth.received_at) * 1000, 1),
            "total_ms": round((time.monotonic() - synth.received_at) * 1000, 1),
        }
        if openai_style:
            words = len(synth.text.split())
            usage = {"input_tokens": words, "output_tokens": 0, "total_tokens": words}
            await events.send({"type": "speech.audio.done", "usage": usage})
        else:
            await events.send({"chunks": index, "audio_bytes": audio_bytes, **timings}, "done")
        return events.response


async def whole_audio(
    request: web.Request, synth: SynthesisRequest, audio_format: str, sample_rate: int | None = None
) -> web.Response:
    """The whole utterance as one `wav` file or `pcm` body (the backend's rate unless `sample_rate`)."""
    if audio_format not in WHOLE_FORMATS:
        choices = ", ".join(WHOLE_FORMATS)
        raise UnsupportedFormat(f"format: {audio_format!r} is not supported; use one of {choices}")
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
        headers={"X-Sample-Rate": str(rate)},
    )
