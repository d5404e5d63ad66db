"""Cartesia's TTS protocol, shared by `GET /tts/websocket` and `POST /tts/bytes`.

A generation request (Cartesia's API reference, "TTS WebSocket" and "TTS
Bytes") is `{model_id, transcript, voice: {mode: "id", id}, output_format:
{container, encoding, sample_rate}, language?, context_id?, continue?,
add_timestamps?, flush?, generation_config?: {speed?}, speed?}`; a cancel is
`{context_id, cancel: true}`. Server messages carry the context's id:
`chunk` (base64 audio in `data`), `timestamps` (`word_timestamps`: words,
start and end in seconds from the context's first sample), `flush_done`,
`done` and `error`.

`pronunciation_dict_id` names one of this server's pronunciation
dictionaries (`POST /v1/pronunciation-dictionaries/add-from-rules`).
What cannot apply here is accepted and ignored: `model_id` (the server's
backend speaks), emotions and `__experimental_controls`,
`max_buffer_delay_ms` (text is spoken clause by
clause as it arrives), `use_normalized_timestamps` and phoneme timestamps
(words are always the transcript's as written). `voice.mode` must be `id`
(an embedding cannot name one of our voices). `speed` is
`generation_config.speed` (a number, as Sonic 3 takes it) or the older
top-level `"slow" | "normal" | "fast"`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from media_server.audio.codecs import AlawEncoder, MulawEncoder, PcmEncoder, StreamEncoder
from media_server.engine.parameters import PARAMETERS
from media_server.engine.types import DictionaryLocator
from media_server.errors import InvalidRequest, UnsupportedFormat

ENCODINGS: dict[str, Callable[[int], StreamEncoder]] = {
    "pcm_s16le": PcmEncoder,
    "pcm_mulaw": MulawEncoder,
    "pcm_alaw": AlawEncoder,
}
NAMED_SPEEDS = {"slow": 0.8, "normal": 1.0, "fast": 1.25}
MIN_RATE, MAX_RATE = 8000, 48000
STATUS_PARTIAL = 206
"""What Cartesia puts in every message of a context still going."""


@dataclass(frozen=True)
class Generation:
    """One generation request, as far as it applies here."""

    context_id: str
    transcript: str
    voice: str | None
    encoding: str
    sample_rate: int
    container: str
    language: str
    speed: float
    more: bool
    """`continue`: more text for this context follows."""
    add_timestamps: bool
    flush: bool
    dictionaries: tuple[DictionaryLocator, ...] = ()

    def encoder(self) -> StreamEncoder:
        return ENCODINGS[self.encoding](self.sample_rate)


def new_context_id() -> str:
    return "ctx-" + uuid.uuid4().hex[:12]


def parse_generation(message: dict[str, Any], containers: Sequence[str] = ("raw",)) -> Generation:
    """A generation request; InvalidRequest / UnsupportedFormat naming the field that is wrong."""
    transcript = message.get("transcript", "")
    if not isinstance(transcript, str):
        raise InvalidRequest("transcript: must be a string")
    context_id = message.get("context_id") or new_context_id()
    if not isinstance(context_id, str) or len(context_id) > 128:
        raise InvalidRequest("context_id: must be a string of at most 128 characters")
    output = message.get("output_format")
    if not isinstance(output, dict):
        raise InvalidRequest("output_format: required, an object with container, encoding and sample_rate")
    container = output.get("container", "raw")
    if container not in containers:
        raise UnsupportedFormat(f"output_format.container: {container!r} is not supported; use {', '.join(containers)}")
    encoding = output.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        raise UnsupportedFormat(
            f"output_format.encoding: {encoding!r} is not supported; use one of {', '.join(ENCODINGS)}"
        )
    rate = output.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise UnsupportedFormat(f"output_format.sample_rate: {rate!r} is not a rate in {MIN_RATE}-{MAX_RATE} Hz")
    language = message.get("language") or "auto"
    if not isinstance(language, str):
        raise InvalidRequest("language: must be a string")
    return Generation(
        context_id=context_id,
        transcript=transcript,
        voice=_voice(message.get("voice")),
        encoding=encoding,
        sample_rate=rate,
        container=container,
        language=language,
        speed=_speed(message),
        more=_flag(message, "continue"),
        add_timestamps=_flag(message, "add_timestamps"),
        flush=_flag(message, "flush"),
        dictionaries=_dictionaries(message),
    )


def _flag(message: dict[str, Any], name: str) -> bool:
    value = message.get(name, False)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name}: must be true or false")
    return value


def _dictionaries(message: dict[str, Any]) -> tuple[DictionaryLocator, ...]:
    dictionary_id = message.get("pronunciation_dict_id")
    if dictionary_id is None or dictionary_id == "":
        return ()
    if not isinstance(dictionary_id, str):
        raise InvalidRequest("pronunciation_dict_id: must be a string, a stored pronunciation dictionary's id")
    return (DictionaryLocator(dictionary_id, named_by="pronunciation_dict_id"),)


def _voice(voice: object) -> str | None:
    if voice is None:
        return None
    if not isinstance(voice, dict):
        raise InvalidRequest("voice: must be an object {mode: 'id', id: '<voice id>'}")
    if voice.get("mode", "id") != "id":
        raise InvalidRequest(f"voice.mode: {voice.get('mode')!r} is not supported; name a voice with mode 'id'")
    voice_id = voice.get("id")
    if voice_id is not None and not isinstance(voice_id, str):
        raise InvalidRequest("voice.id: must be a string")
    return voice_id


def _speed(message: dict[str, Any]) -> float:
    config = message.get("generation_config")
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("generation_config: must be an object")
    speed = (config or {}).get("speed")
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise InvalidRequest("generation_config.speed: must be a number")
        PARAMETERS["speed"].check("generation_config.speed", speed)
        return float(speed)
    named = message.get("speed")
    if named is None:
        return 1.0
    if named not in NAMED_SPEEDS:
        raise InvalidRequest(f"speed: {named!r} is not one of {', '.join(NAMED_SPEEDS)}")
    return NAMED_SPEEDS[named]


def chunk_message(context_id: str, audio: bytes) -> str:
    data = base64.b64encode(audio).decode()
    return json.dumps(
        {"type": "chunk", "data": data, "done": False, "status_code": STATUS_PARTIAL, "context_id": context_id}
    )


def timestamps_message(context_id: str, words: Sequence[tuple[str, float, float]]) -> str:
    """Words with start and end in seconds from the context's first sample."""
    return json.dumps(
        {
            "type": "timestamps",
            "done": False,
            "status_code": STATUS_PARTIAL,
            "context_id": context_id,
            "word_timestamps": {
                "words": [word for word, _, _ in words],
                "start": [round(start, 3) for _, start, _ in words],
                "end": [round(end, 3) for _, _, end in words],
            },
        }
    )


def flush_done_message(context_id: str, flush_id: int) -> str:
    return json.dumps(
        {
            "type": "flush_done",
            "done": False,
            "flush_done": True,
            "flush_id": flush_id,
            "status_code": STATUS_PARTIAL,
            "context_id": context_id,
        }
    )


def done_message(context_id: str) -> str:
    return json.dumps({"type": "done", "done": True, "status_code": STATUS_PARTIAL, "context_id": context_id})


def error_message(context_id: str | None, status: int, message: str) -> str:
    error: dict[str, Any] = {"type": "error", "done": True, "status_code": status, "error": message}
    if context_id is not None:
        error["context_id"] = context_id
    return json.dumps(error)
