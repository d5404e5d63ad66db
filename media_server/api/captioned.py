"""`POST /dev/captioned_speech`: speech with word timestamps, in the shape Kokoro-FastAPI's users know.

The body is OpenAI's speech body (`model`, `input`, `voice`, `response_format`,
`speed`, `instructions`...) plus `stream` (default true). Streamed
(real-time priority), the answer is NDJSON: one line per chunk of audio as it
is made, `{"audio": base64, "audio_format", "timestamps": [{"word",
"start_time", "end_time"}...]}`, each word in the line of the chunk its start
is in (seconds from the first sample; `"estimated": true` from a backend
without an aligner). With `stream: false` (batch priority), one JSON object:
the whole audio and every word.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from media_server.api.app_keys import ENGINE
from media_server.api.audio_response import break_off
from media_server.api.body import json_object, with_default
from media_server.api.speech import openai_request
from media_server.audio.codecs import StreamEncoder, audio_format
from media_server.audio.constants import OPENAI_PCM_RATE
from media_server.audio.resample import Resampler
from media_server.engine.seam import AudioStream
from media_server.engine.types import Priority, WordTiming
from media_server.errors import MediaServerError

PATH = "/dev/captioned_speech"
CAPTIONED_FORMATS = ("mp3", "wav", "pcm", "opus", "flac", "aac")


def timestamps(words: tuple[WordTiming, ...]) -> list[dict[str, Any]]:
    stamps = []
    for word in words:
        stamp: dict[str, Any] = {
            "word": word.word,
            "start_time": round(word.start_s, 3),
            "end_time": round(word.end_s, 3),
        }
        if word.estimated:
            stamp["estimated"] = True
        stamps.append(stamp)
    return stamps


async def captioned_pieces(
    chunks: AudioStream, encoder: StreamEncoder
) -> AsyncIterator[tuple[bytes, tuple[WordTiming, ...]]]:
    """Each engine chunk encoded (the header with the first), with the words it starts; then the encoder's tail."""
    resampler = Resampler(chunks.sample_rate, encoder.sample_rate)
    head = encoder.header()
    async for chunk in chunks:
        data = await asyncio.to_thread(encoder.encode, resampler.process(chunk.pcm))
        yield head + data, chunk.words
        head = b""
    yield await asyncio.to_thread(lambda: head + encoder.encode(resampler.flush()) + encoder.finish()), ()


async def captioned_speech(request: web.Request) -> web.StreamResponse:
    body = await json_object(request)
    stream = with_default(body, "stream", bool, True)
    synth = openai_request(request, body, Priority.REALTIME if stream else Priority.BATCH)
    name = with_default(body, "response_format", str, "mp3")
    encoder = audio_format(name, allowed=CAPTIONED_FORMATS).encoder(OPENAI_PCM_RATE)
    chunks = request.app[ENGINE].stream(synth)
    async with chunks:
        await chunks.wait_ready()
        if not stream:
            audio, words = bytearray(), []
            async for data, said in captioned_pieces(chunks, encoder):
                audio += data
                words += timestamps(said)
            line = {"audio": base64.b64encode(bytes(audio)).decode(), "audio_format": name, "timestamps": words}
            return web.json_response(line)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for data, said in captioned_pieces(chunks, encoder):
                if data or said:
                    line = {
                        "audio": base64.b64encode(data).decode(),
                        "audio_format": name,
                        "timestamps": timestamps(said),
                    }
                    await response.write(json.dumps(line).encode() + b"\n")
        except MediaServerError:
            break_off(request)
        return response


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, captioned_speech)
