"""`GET /openapi.json`: an OpenAPI 3.1 description of every HTTP route.

Written by hand next to the routes it describes; a test checks that every
route the app registers appears here, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from media_server.api.captioned import CAPTIONED_FORMATS
from media_server.api.speech import SPEECH_FORMATS, SSE_FORMATS
from media_server.audio.sample_rates import JAMBONZ_RATES
from media_server.engine.dictionaries import MAX_LOCATORS
from media_server.engine.parameters import FLAGS, LOCATORS, PARAMETERS

JSON = "application/json"
ERROR = {
    "description": "Error",
    "content": {
        JSON: {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            }
        }
    },
}


def _schema(name: str) -> dict[str, Any]:
    """The JSON schema of a numeric parameter, from the one table of ranges."""
    bound = PARAMETERS[name]
    schema: dict[str, Any] = {"type": "integer" if bound.integer else "number", "maximum": bound.high}
    schema["exclusiveMinimum" if bound.above_low else "minimum"] = bound.low
    if bound.meaning:
        schema["description"] = bound.meaning
    return schema


SAMPLING = {name: _schema(name) for name in ("temperature", "top_p", "top_k", "repetition_penalty", "seed")}
LOCATOR_LIST = {
    "type": "array",
    "maxItems": MAX_LOCATORS,
    "items": {
        "type": "object",
        "required": ["pronunciation_dictionary_id"],
        "properties": {"pronunciation_dictionary_id": {"type": "string"}, "version_id": {"type": "string"}},
    },
    "description": "stored pronunciation dictionaries to apply, in order",
}
TEXT_CONTROL = {
    **{name: {"type": "boolean", "default": False, "description": meaning} for name, meaning in FLAGS.items()},
    LOCATORS: LOCATOR_LIST,
}
SPEED = {**_schema("speed"), "default": 1.0}
TTS_BODY = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "voice": {"type": "string"},
        "language": {"type": "string", "default": "auto"},
        "speed": SPEED,
        "instructions": {"type": "string"},
        "sample_rate": {"type": "integer", "minimum": 8000, "maximum": 48000},
        **SAMPLING,
        **TEXT_CONTROL,
    },
}
RULE = {
    "type": "object",
    "required": ["string_to_replace", "type"],
    "properties": {
        "string_to_replace": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": ["alias", "phoneme"]},
        "alias": {"type": "string"},
        "phoneme": {"type": "string", "description": "IPA"},
        "alphabet": {"type": "string", "enum": ["ipa"]},
        "case_sensitive": {"type": "boolean", "default": True},
        "word_boundaries": {"type": "boolean", "default": True},
    },
}
DICTIONARY_ID = [{"name": "dictionary_id", "in": "path", "required": True, "schema": {"type": "string"}}]
OPENAI_SPEECH_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["input", "voice"],
    "properties": {
        "model": {"type": "string"},
        "input": {"type": "string", "minLength": 1},
        "voice": {"type": "string"},
        "speed": SPEED,
        "instructions": {"type": "string"},
        "language": {"type": "string"},
        **SAMPLING,
        **TEXT_CONTROL,
    },
}
CARTESIA_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["transcript", "output_format"],
    "properties": {
        "model_id": {"type": "string", "description": "accepted and ignored"},
        "transcript": {"type": "string", "minLength": 1},
        "voice": {"type": "object", "properties": {"mode": {"enum": ["id"]}, "id": {"type": "string"}}},
        "output_format": {
            "type": "object",
            "properties": {
                "container": {"enum": ["raw", "wav"]},
                "encoding": {"enum": ["pcm_s16le", "pcm_mulaw", "pcm_alaw"]},
                "sample_rate": {"type": "integer", "minimum": 8000, "maximum": 48000},
            },
        },
        "language": {"type": "string"},
        "generation_config": {"type": "object", "properties": {"speed": SPEED}},
        "pronunciation_dict_id": {"type": "string", "description": "a stored pronunciation dictionary's id"},
    },
}
CLONE_FORM = {
    "type": "object",
    "properties": {
        "audio": {"type": "string", "format": "binary"},
        "audio_url": {"type": "string"},
        "transcript": {"type": "string"},
        "name": {"type": "string"},
    },
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _ok(content_type: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {content_type: {"schema": {}}}}


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**responses, "4XX": ERROR, "5XX": ERROR}}
    if body is not None:
        operation["requestBody"] = _json_body(body)
    return operation


def _with_property(schema: dict[str, Any], name: str, prop: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "properties": {**schema["properties"], name: prop}}


PATHS: dict[str, dict[str, Any]] = {
    "/": {"get": _op("The demo page", {"200": _ok("text/html")})},
    "/healthz": {"get": _op("Liveness", {"200": _ok(JSON)})},
    "/readyz": {"get": _op("Readiness: 200 once a backend is loaded and warm", {"200": _ok(JSON)})},
    "/v1/voices": {
        "get": _op("The voices of the loaded backend", {"200": _ok(JSON)}),
        "post": {
            **_op(
                "Clone a voice from reference audio (multipart: audio or audio_url, transcript?, name?)",
                {"201": _ok(JSON)},
            ),
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": CLONE_FORM}}},
        },
    },
    "/v1/voices/{voice_id}": {
        "delete": {
            **_op("Delete a cloned voice", {"200": _ok(JSON)}),
            "parameters": [{"name": "voice_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        }
    },
    "/clone": {
        "post": {
            **_op("One-shot: clone from reference audio and speak `text` with it", {"200": _ok("audio/wav")}),
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": _with_property(CLONE_FORM, "text", {"type": "string"})}},
            },
        }
    },
    "/metrics": {"get": _op("Prometheus metrics", {"200": _ok("text/plain")})},
    "/v1/models": {"get": _op("OpenAI-style model list", {"200": _ok(JSON)})},
    "/v1/audio/speech": {
        "post": _op(
            "OpenAI-compatible speech; streamed as it is made",
            {"200": _ok("audio/*")},
            _with_property(
                _with_property(
                    OPENAI_SPEECH_BODY,
                    "response_format",
                    {"type": "string", "enum": list(SPEECH_FORMATS), "default": "mp3"},
                ),
                "stream_format",
                {"type": "string", "enum": ["audio", "sse"], "default": "audio"},
            ),
        )
    },
    "/tts": {
        "post": _op(
            "Whole file (batch priority)",
            {"200": _ok("audio/wav")},
            _with_property(TTS_BODY, "format", {"type": "string", "enum": ["wav", "pcm"], "default": "wav"}),
        )
    },
    "/tts/stream": {
        "post": _op(
            "SSE: an `audio` event per chunk (base64), then `done` with timings (real-time priority)",
            {"200": _ok("text/event-stream")},
            _with_property(TTS_BODY, "format", {"type": "string", "enum": list(SSE_FORMATS), "default": "pcm"}),
        )
    },
    "/tts/pcm": {
        "post": _op(
            "Chunked raw s16le PCM; rate in X-Sample-Rate (real-time priority)", {"200": _ok("audio/pcm")}, TTS_BODY
        )
    },
    "/ws/tts": {"get": _op("WebSocket: the data-channel protocol; audio as binary messages", {"101": _ok(JSON)})},
    "/tts/websocket": {
        "get": _op(
            "WebSocket: Cartesia's streaming TTS protocol (contexts, continue, flush, cancel; chunk, timestamps, "
            "flush_done, done and error messages); X-API-Key or ?api_key=",
            {"101": _ok(JSON)},
        )
    },
    "/tts/bytes": {
        "post": _op(
            "Cartesia's one-shot TTS: encoded audio streamed as it is made (real-time priority)",
            {"200": _ok("audio/*")},
            CARTESIA_BODY,
        )
    },
    "/v1/audio/voices": {"get": _op("The voice ids, as Kokoro-FastAPI and vLLM-Omni list them", {"200": _ok(JSON)})},
    "/dev/captioned_speech": {
        "post": _op(
            "Speech with word timestamps (Kokoro-FastAPI's shape): NDJSON lines {audio, audio_format, timestamps} "
            "as it is made, or one JSON object with stream: false",
            {"200": _ok("application/x-ndjson")},
            _with_property(
                _with_property(
                    OPENAI_SPEECH_BODY,
                    "response_format",
                    {"type": "string", "enum": list(CAPTIONED_FORMATS), "default": "mp3"},
                ),
                "stream",
                {"type": "boolean", "default": True},
            ),
        )
    },
    "/ws/telephony": {"get": _op("WebSocket: Twilio Media Streams (8 kHz mu-law)", {"101": _ok(JSON)})},
    "/ws/telnyx": {
        "get": _op(
            "WebSocket: Telnyx media streaming, bidirectional RTP mode (?codec=PCMU|PCMA|L16)", {"101": _ok(JSON)}
        )
    },
    "/ws/plivo": {"get": _op("WebSocket: Plivo bidirectional audio streams (?codec=mulaw|l16)", {"101": _ok(JSON)})},
    "/ws/vonage": {"get": _op("WebSocket: the Vonage Voice API's websocket endpoint", {"101": _ok(JSON)})},
    "/ws/calls/{call_id}": {
        "get": {
            **_op(
                "WebSocket: a live call's control channel, in the data-channel protocol",
                {"101": _ok(JSON)},
            ),
            "parameters": [{"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        }
    },
    "/ws/jambonz/tts": {"get": _op("WebSocket: jambonz's streaming custom TTS vendor API", {"101": _ok(JSON)})},
    "/jambonz/tts": {
        "post": {
            **_op(
                "jambonz's custom TTS vendor API: audio/l16 at ?sampleRate= (real-time priority)",
                {"200": _ok("audio/l16")},
                {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "minLength": 1},
                        "type": {"type": "string", "enum": ["text", "ssml"], "default": "text"},
                        "voice": {"type": "string"},
                        "language": {"type": "string", "default": "auto"},
                    },
                },
            ),
            "parameters": [
                {
                    "name": "sampleRate",
                    "in": "query",
                    "schema": {"type": "integer", "enum": list(JAMBONZ_RATES), "default": JAMBONZ_RATES[0]},
                }
            ],
        }
    },
    "/rtc/config": {"get": _op("ICE servers for clients", {"200": _ok(JSON)})},
    "/rtc/offer": {
        "post": _op(
            "Negotiate a WebRTC peer: SDP offer in, answer and session id out",
            {"200": _ok(JSON)},
            {
                "type": "object",
                "required": ["sdp", "type"],
                "properties": {
                    "sdp": {"type": "string"},
                    "type": {"type": "string", "enum": ["offer"]},
                    "voice": {"type": "string"},
                },
            },
        )
    },
    "/rtc/sessions/{session_id}": {
        "delete": {
            **_op("Hang up", {"200": _ok(JSON)}),
            "parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        }
    },
    "/openapi.json": {"get": _op("This description", {"200": _ok(JSON)})},
    "/v1/ssml": {
        "get": _op("The SSML elements and attributes spoken, and the voices that speak phonemes", {"200": _ok(JSON)})
    },
    "/v1/pronunciation-dictionaries": {"get": _op("The stored pronunciation dictionaries", {"200": _ok(JSON)})},
    "/v1/pronunciation-dictionaries/add-from-rules": {
        "post": _op(
            "Store a pronunciation dictionary from alias and phoneme rules",
            {"200": _ok(JSON)},
            {
                "type": "object",
                "required": ["name", "rules"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "rules": {"type": "array", "minItems": 1, "items": RULE},
                },
            },
        )
    },
    "/v1/pronunciation-dictionaries/add-from-file": {
        "post": {
            **_op("Store a pronunciation dictionary from a PLS file (multipart: file, name)", {"200": _ok(JSON)}),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file", "name"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "name": {"type": "string"},
                                "description": {"type": "string"},
                            },
                        }
                    }
                },
            },
        }
    },
    "/v1/pronunciation-dictionaries/{dictionary_id}": {
        "get": {
            **_op("A stored pronunciation dictionary with its rules", {"200": _ok(JSON)}),
            "parameters": DICTIONARY_ID,
        },
        "delete": {**_op("Delete a stored pronunciation dictionary", {"200": _ok(JSON)}), "parameters": DICTIONARY_ID},
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "media-server", "version": "0.1.0", "description": "Real-time WebRTC voice media server"},
        "paths": PATHS,
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi)
