"""An LRU cache of finished utterances, so a repeated phrase is served without synthesis.

An entry is the whole utterance as the engine finished it (its chunks, each
PCM with the word timings it carries, and the sample rate), keyed by everything that shapes the audio (`CacheKey`). The
cache is bounded by the PCM bytes it holds, evicts least recently used
entries first, and is safe to share between the engine's worker threads and
the event loop. Cached chunks are read-only arrays: readers get them without
a copy and cannot change them for the next reader.

What may be cached (`AudioCache.cacheable`). A key is cacheable when a replay
is as right an answer as a fresh synthesis:
- the request gives a seed: it asked for reproducible audio, and the cache
  guarantees it even where the backend cannot (Piper's noise is not seeded);
- decoding is greedy (temperature 0 or top_k 1): the same input gives the
  same audio;
- the backend is listed in `deterministic_backends`: its output is fixed by
  the key. Piper belongs here: its VITS noise is drawn from a generator seeded
  by the text (and the request's seed), so the same text gives the same
  samples. A sampling language model (Qwen3-TTS) does not: without a seed, a
  temperature above zero asks for a new sample each time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from media_server.engine.types import Pcm, SamplingParams, Speech, SynthesisRequest, Voice

__all__ = ["AudioCache", "CacheKey", "CacheStats", "CachedAudio"]


@dataclass(frozen=True)
class CacheKey:
    """Everything that shapes an utterance's audio, and the text as written that its word timings name."""

    text: str
    """The normalized text, as the backend receives it."""
    voice: str
    language: str
    """The resolved language (never "auto")."""
    speed: float
    sampling: SamplingParams
    backend: str
    written: str = ""
    """The text as written ("$3.50" and "three dollars and fifty cents" sound the same, with other words)."""

    @classmethod
    def for_request(
        cls, request: SynthesisRequest, voice: Voice, *, text: str, language: str, written: str
    ) -> CacheKey:
        """The key of `request` spoken by `voice`, with the engine's normalized text and resolved language."""
        return cls(text, voice.id, language, request.speed, request.sampling, voice.backend, written)


@dataclass(frozen=True)
class CachedAudio:
    """A finished utterance: its chunks in order, read-only, at one sample rate."""

    chunks: tuple[Speech, ...]
    sample_rate: int

    @property
    def nbytes(self) -> int:
        return sum(chunk.pcm.nbytes for chunk in self.chunks)


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of the cache's counters, for metrics."""

    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int
    max_bytes: int


class AudioCache:
    """A byte-bounded, thread-safe LRU of finished utterances."""

    def __init__(self, max_bytes: int, deterministic_backends: Collection[str] = ()) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self._max_bytes = max_bytes
        self._deterministic_backends = frozenset(deterministic_backends)
        self._entries: OrderedDict[CacheKey, CachedAudio] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._lock = threading.Lock()

    def cacheable(self, key: CacheKey) -> bool:
        """Whether replaying `key`'s audio is as right as synthesizing it again (see the module docstring)."""
        if self._max_bytes == 0:
            return False
        sampling = key.sampling
        greedy = sampling.temperature == 0 or sampling.top_k == 1
        return sampling.seed is not None or greedy or key.backend in self._deterministic_backends

    def get(self, key: CacheKey) -> CachedAudio | None:
        """The cached utterance for `key` (now the most recently used), or None; counts a hit or a miss."""
        with self._lock:
            audio = self._entries.get(key)
            if audio is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return audio

    def put(self, key: CacheKey, chunks: Sequence[Speech], sample_rate: int) -> bool:
        """Store a finished utterance; False when `key` is not cacheable or the audio exceeds the bound.

        The chunks are copied, so the caller may go on using (and changing) its own arrays.
        """
        if not self.cacheable(key):
            return False
        audio = CachedAudio(tuple(Speech(_frozen_copy(chunk.pcm), chunk.words) for chunk in chunks), sample_rate)
        size = audio.nbytes
        if size > self._max_bytes:
            return False
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.nbytes
            while self._entries and self._bytes + size > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self._evictions += 1
            self._entries[key] = audio
            self._bytes += size
        return True

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                entries=len(self._entries),
                bytes=self._bytes,
                max_bytes=self._max_bytes,
            )


def _frozen_copy(chunk: Pcm) -> Pcm:
    copy: Pcm = np.array(chunk, dtype=np.int16, copy=True)
    copy.flags.writeable = False
    return copy
