"""RequestPipeline: what the engine does around the model for one request.

Created at admission on the event loop (cheap), then run in a worker thread:
`begin` makes the text speakable for its language (normalized, SSML's inline
readings and phonemes in place: `text/spoken.py`) and looks the result up in the
audio cache; `process` finishes each step's audio (trim, speed, loudness)
and records it; `complete` stores a finished utterance in the cache.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Protocol

from media_server.audio.pcm import Pcm
from media_server.engine.cache import AudioCache, CacheKey
from media_server.engine.postprocess import PostProcessor
from media_server.engine.types import PHONEMES, RequestTimings, SynthesisRequest, Voice
from media_server.text.spoken import spoken_text


class Finisher(Protocol):
    """What finishes each step's audio (`PostProcessor`: trim, speed, loudness)."""

    def process(self, pcm: Pcm) -> Pcm: ...


class RequestPipeline:
    def __init__(
        self,
        request: SynthesisRequest,
        voice: Voice,
        language: str,
        gain: float,
        cache: AudioCache,
        native_speed: bool,
        finish: Finisher | None = None,
    ) -> None:
        self.request = request
        self.voice = voice
        self.language = language
        self.timings = RequestTimings()
        self.cache_hit: bool | None = None
        self._cache = cache
        self._post = finish or PostProcessor(voice.sample_rate, gain, 1.0 if native_speed else request.speed)
        self._key: CacheKey | None = None
        self._emitted: list[Pcm] = []

    def begin(self) -> tuple[SynthesisRequest, tuple[Pcm, ...] | None]:
        """The request as the backend should see it, and the cached audio if there is some."""
        started = time.monotonic()
        self.timings.queue_wait_s = started - self.request.received_at
        text = spoken_text(self.request.text, self.request.ssml, self.language, PHONEMES in self.voice.capabilities)
        prepared = replace(self.request, text=text, language=self.language, ssml=False)
        key = CacheKey.for_request(prepared, self.voice, text=text, language=self.language)
        cached = None
        if self._cache.cacheable(key):
            hit = self._cache.get(key)
            self.cache_hit = hit is not None
            cached = hit.chunks if hit is not None else None
            self._key = None if hit is not None else key
        self.timings.text_prep_s = time.monotonic() - started
        return prepared, cached

    def process(self, pcm: Pcm) -> Pcm:
        finished = self._post.process(pcm)
        if self._key is not None and len(finished):
            self._emitted.append(finished)
        return finished

    def complete(self) -> None:
        if self._key is not None and self._emitted:
            self._cache.put(self._key, self._emitted, self.voice.sample_rate)
            self._emitted = []
