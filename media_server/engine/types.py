"""The engine's value types: requests, audio chunks, voices and the stats snapshot."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from enum import IntEnum

from media_server.audio.pcm import Pcm

__all__ = [
    "PHONEMES",
    "AudioChunk",
    "DictionaryLocator",
    "EngineStats",
    "Pcm",
    "Priority",
    "ReplicaFigures",
    "RequestTimings",
    "SamplingParams",
    "Speech",
    "SynthesisRequest",
    "Voice",
    "WordTiming",
]

_request_ids = itertools.count(1)

PHONEMES = "ipa_phonemes"
"""A voice capability: it says IPA given to it (`<phoneme>`, dictionary phoneme rules); others say the text."""


class Priority(IntEnum):
    """Lower runs first: real-time listeners before batch callers."""

    REALTIME = 0
    BATCH = 1


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling; a backend uses what it supports and ignores the rest."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class DictionaryLocator:
    """A stored pronunciation dictionary, by id and (optionally) the version meant."""

    pronunciation_dictionary_id: str
    version_id: str | None = None
    named_by: str | None = None
    """The request field that holds the id, for errors (None: an entry of `pronunciation_dictionary_locators`)."""


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    voice: str | None = None
    language: str = "auto"
    speed: float = 1.0
    instructions: str | None = None
    ssml: bool = False
    """`text` is SSML (the subset `media_server.text.ssml` speaks)."""
    pronunciation_dictionaries: tuple[DictionaryLocator, ...] = ()
    """Applied in order, before the server-wide ones."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    priority: Priority = Priority.BATCH
    id: str = field(default_factory=lambda: f"req-{next(_request_ids)}")
    received_at: float = field(default_factory=time.monotonic)
    fallback_language: str | None = None
    """For language "auto": the language to assume when the text does not clearly say (a session's so far)."""
    deadline: float | None = None
    """When (monotonic) the listener will need this request's first audio: later than now when it
    continues an utterance whose earlier audio is still playing. None: at once."""

    @property
    def due_at(self) -> float:
        return self.received_at if self.deadline is None else self.deadline


@dataclass
class RequestTimings:
    """Where a request's time went before its first audio, in seconds."""

    text_prep_s: float = 0.0
    queue_wait_s: float = 0.0
    first_step_s: float = 0.0


@dataclass(frozen=True)
class WordTiming:
    """A word of the request's text as written, and when it is said: seconds from the request's first sample."""

    word: str
    start_s: float
    end_s: float
    estimated: bool = False
    """From the text and the audio's length, not measured (a backend without an aligner)."""


@dataclass(frozen=True)
class Speech:
    """A step's finished audio and the words whose start it carries (a request's last may have words only)."""

    pcm: Pcm
    words: tuple[WordTiming, ...] = ()


@dataclass(frozen=True)
class AudioChunk:
    """Mono s16 PCM at the backend's native rate, and the words whose start is in it (times from the request's
    first sample). A request's last chunk may carry words and no audio."""

    pcm: Pcm
    sample_rate: int
    request_id: str
    index: int
    words: tuple[WordTiming, ...] = ()

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    backend: str
    languages: tuple[str, ...]
    sample_rate: int
    capabilities: tuple[str, ...] = ()
    """What it can do beyond plain text (`PHONEMES`)."""


@dataclass(frozen=True)
class ReplicaFigures:
    """One engine replica's own figures, for a core spread over replicas (`MODE=ray`)."""

    replica: str
    node: str
    ready: bool
    active: int
    queued: int
    queued_batch: int
    late_chunks: int
    slack_s: float
    """The first-audio budget minus the replica's estimate of a new real-time request's first audio."""


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's counters, turned into metrics outside the engine."""

    backend: str
    ready: bool
    active: int
    queued: int
    parked: int
    max_queue: int
    """Real-time requests admitted beyond which the engine refuses (batch work has its own bound)."""
    completed: int
    cancelled: int
    failed: int
    refused: int
    steps: int
    last_batch: int
    audio_s: float
    busy_s: float
    cache_bytes: int
    silent: int = 0
    """Of `failed`, the requests whose whole output was silence (`no_audio`)."""
    longest_step_s: float = 0.0
    """How long the oldest synthesis step now running has been at it."""
    queued_batch: int = 0
    """Of `queued`, the batch requests (bounded apart, by `max_batch_queue`)."""
    max_batch_queue: int = 0
    late_chunks: int = 0
    """Chunks of a playing real-time request made after its listener had played everything before them (a gap)."""
    failovers: int = 0
    """Requests re-issued on another replica after theirs died (`MODE=ray`)."""
    replicas: tuple[ReplicaFigures, ...] = ()
    """Each live replica's own figures (`MODE=ray`; empty otherwise)."""

    @classmethod
    def idle(cls, backend: str, max_queue: int, max_batch_queue: int) -> EngineStats:
        """The snapshot of an engine not loaded (yet): nothing running, nothing counted."""
        return cls(
            backend=backend,
            ready=False,
            active=0,
            queued=0,
            parked=0,
            max_queue=max_queue,
            completed=0,
            cancelled=0,
            failed=0,
            refused=0,
            steps=0,
            last_batch=0,
            audio_s=0.0,
            busy_s=0.0,
            cache_bytes=0,
            max_batch_queue=max_batch_queue,
        )
