"""`POST /jambonz/tts`: jambonz's (non-streaming) custom TTS vendor API.

jambonz posts `{"language", "voice", "type": "text" | "ssml", "text"}` with
`Authorization: Bearer <the vendor's API key>` (one of `API_KEYS`). The
answer is the speech as `audio/l16;rate=N`, raw 16-bit little-endian PCM,
streamed as it is synthesized at real-time priority (a caller is waiting) at
the rate the vendor URL names (`?sampleRate=`, 8000 by default). SSML is
spoken as every route speaks it (`text/ssml.py`: the subset `GET /v1/ssml`
lists, breaks as silence). The voice is one of `/v1/voices` (none: the first
that speaks `language`); errors are the usual JSON errors.
"""

from __future__ import annotations

from aiohttp import web

from media_server.api.audio_response import stream_audio
from media_server.api.body import json_object, optional, required, with_default
from media_server.audio.codecs import PcmEncoder
from media_server.audio.sample_rates import JAMBONZ_RATES, requested_rate
from media_server.engine.types import Priority, SynthesisRequest
from media_server.errors import InvalidRequest

PATH = "/jambonz/tts"
ROUTE = "jambonz_http"
TEXT_TYPES = ("text", "ssml")


async def jambonz_tts(request: web.Request) -> web.StreamResponse:
    rate = requested_rate(request.query.get("sampleRate"), "sampleRate", JAMBONZ_RATES, JAMBONZ_RATES[0])
    body = await json_object(request)
    kind = with_default(body, "type", str, "text")
    if kind not in TEXT_TYPES:
        raise InvalidRequest(f"type: {kind[:40]!r} is not one of {', '.join(TEXT_TYPES)}")
    text = required(body, "text", str)
    synth = SynthesisRequest(
        text=text,
        ssml=kind == "ssml",
        voice=optional(body, "voice", str),
        language=with_default(body, "language", str, "auto"),
        priority=Priority.REALTIME,
    )
    headers = {"Content-Type": f"audio/l16;rate={rate}"}
    return await stream_audio(request, synth, PcmEncoder(rate), ROUTE, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, jambonz_tts)
