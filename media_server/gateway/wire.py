"""The gateway <-> worker wire: length-prefixed frames over a Unix domain socket, one connection per request.

Why Unix stream sockets, one connection per request:
- abort is closing the connection: the worker sees end-of-file at once, even
  while it waits for the next step, and closes the engine stream, so the
  request's slot frees at the engine's next step; no request ids, no cancel
  messages, nothing to match up;
- back-pressure per request for free: a reader that falls behind fills its
  socket's buffer, the worker stops taking chunks, and the engine parks the
  job, as it does in one process; no request can block another (no
  head-of-line blocking on a shared channel);
- a worker that dies closes every connection: each in-flight request fails at
  once with `WorkerDied`;
- cheap: a local connect is tens of microseconds, the audio copy is ~44 kB/s
  per stream; a 20 ms frame dwarfs both.
multiprocessing pipes/queues would need ids, cancel messages, pickling and a
reader thread; shared-memory rings buy nothing at this data rate; gRPC or HTTP
would add a dependency and per-frame cost to a process meant to stay light;
loopback TCP needs a port any local user can reach, where the socket lives in
a 0700 directory.

A frame is a 1-byte kind, a 4-byte big-endian length and the payload: JSON
for messages (requests, replies, a stream's header) and for the word timings
of the audio frame that follows, raw s16le PCM for audio.
A synthesis connection carries: request -> header (after the first step) ->
(words? audio)* -> end, or an error frame at any point (the worker's MediaServerError:
code, message, status, retry_after_s), after which the worker closes it.
Other requests get one reply (or an error frame); a voice to clone sends its
reference as one audio frame after the request.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import asdict
from typing import Any

import numpy as np

from media_server.engine.types import (
    DictionaryLocator,
    EngineStats,
    Pcm,
    Priority,
    RequestTimings,
    SamplingParams,
    Speech,
    SynthesisRequest,
    Voice,
    WordTiming,
)
from media_server.errors import (
    Busy,
    ConfigError,
    EngineError,
    EngineUnavailable,
    InvalidRequest,
    InvalidSsml,
    MediaServerError,
    NoAudio,
    NothingToSpeak,
    NotReady,
    TextTooLong,
    UnknownVoice,
    UnsupportedFormat,
    UnsupportedLanguage,
    WorkerDied,
)

MESSAGE = 1
AUDIO = 2
END = 3
ERROR = 4
WORDS = 5
_HEAD = struct.Struct(">BI")
# Far beyond the longest utterance's chunk; only a corrupt stream comes near it.
MAX_FRAME_BYTES = 256 * 1024 * 1024

Message = dict[str, Any]


_ERRORS: dict[str, type[MediaServerError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        InvalidSsml,
        UnknownVoice,
        TextTooLong,
        UnsupportedFormat,
        UnsupportedLanguage,
        ConfigError,
        Busy,
        NotReady,
        EngineError,
        NoAudio,
        NothingToSpeak,
        WorkerDied,
        EngineUnavailable,
    )
}


async def write_frame(writer: asyncio.StreamWriter, kind: int, payload: bytes = b"") -> None:
    writer.write(_HEAD.pack(kind, len(payload)) + payload)
    await writer.drain()


async def write_message(writer: asyncio.StreamWriter, message: Message) -> None:
    await write_frame(writer, MESSAGE, json.dumps(message).encode())


async def write_error(writer: asyncio.StreamWriter, exc: MediaServerError) -> None:
    await write_frame(writer, ERROR, json.dumps(error_to_wire(exc)).encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame's kind and payload; raises EOFError (IncompleteReadError) when the peer hung up."""
    kind, length = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    if kind not in (MESSAGE, AUDIO, END, ERROR, WORDS) or length > MAX_FRAME_BYTES:
        raise ConnectionError(f"corrupt frame: kind {kind}, {length} bytes")
    return kind, await reader.readexactly(length)


async def read_message(reader: asyncio.StreamReader) -> Message:
    """The next frame, which must be a message; an error frame raises its MediaServerError."""
    kind, payload = await read_frame(reader)
    if kind == ERROR:
        raise error_from_wire(json.loads(payload))
    if kind != MESSAGE:
        raise ConnectionError(f"expected a message frame, got kind {kind}")
    message: Message = json.loads(payload)
    return message


def error_to_wire(exc: MediaServerError) -> Message:
    return {
        "code": exc.code,
        "message": exc.message,
        "status": exc.status,
        "retry_after_s": exc.retry_after_s,
        "estimate_ms": exc.estimate_ms if isinstance(exc, Busy) else None,
    }


def error_from_wire(fields: Message) -> MediaServerError:
    """The worker's error as the same MediaServerError subclass (the one place codes map to classes)."""
    code, message = str(fields["code"]), str(fields["message"])
    cls = _ERRORS.get(code)
    exc: MediaServerError
    if cls is Busy:
        exc = Busy(message, retry_after_s=fields["retry_after_s"], estimate_ms=fields["estimate_ms"])
    elif cls is not None:
        exc = cls(message)
    else:  # an error class this table does not know: keep its code and status
        exc = MediaServerError(message)
        exc.code, exc.status = code, int(fields["status"])
    if fields["retry_after_s"] is not None:
        exc.retry_after_s = float(fields["retry_after_s"])
    return exc


def request_to_wire(request: SynthesisRequest) -> Message:
    return asdict(request)


def request_from_wire(fields: Message) -> SynthesisRequest:
    return SynthesisRequest(
        **{
            **fields,
            "sampling": SamplingParams(**fields["sampling"]),
            "priority": Priority(fields["priority"]),
            "pronunciation_dictionaries": tuple(
                DictionaryLocator(**locator) for locator in fields["pronunciation_dictionaries"]
            ),
        }
    )


def voice_from_wire(fields: Message) -> Voice:
    return Voice(**{**fields, "languages": tuple(fields["languages"]), "capabilities": tuple(fields["capabilities"])})


def stats_from_wire(fields: Message) -> EngineStats:
    """A worker's or a replica's own snapshot (never one of per-replica figures)."""
    return EngineStats(**{**fields, "replicas": ()})


def update_timings(timings: RequestTimings, fields: Message) -> None:
    """Copy the worker's timings into the gateway stream's own object (callers hold a reference to it)."""
    for name in asdict(timings):
        setattr(timings, name, float(fields[name]))


def pcm_to_wire(pcm: Pcm) -> bytes:
    return pcm.astype("<i2", copy=False).tobytes()


def pcm_from_wire(payload: bytes) -> Pcm:
    return np.frombuffer(payload, dtype="<i2").astype(np.int16)


async def write_speech(writer: asyncio.StreamWriter, speech: Speech) -> None:
    """Audio as its words frame (when it carries words) and its audio frame."""
    if speech.words:
        await write_frame(writer, WORDS, json.dumps([asdict(word) for word in speech.words]).encode())
    await write_frame(writer, AUDIO, pcm_to_wire(speech.pcm))


def words_from_wire(payload: bytes) -> tuple[WordTiming, ...]:
    return tuple(WordTiming(**fields) for fields in json.loads(payload))
