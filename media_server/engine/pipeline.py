"""RequestPipeline: what the engine does around the model for one request.

Created at admission on the event loop (cheap), then run in a worker thread:
`begin` makes the text speakable for its language (normalized, SSML's inline
readings and phonemes in place: `text/spoken.py`) and looks the result up in the
audio cache; `timed` takes the word spans the backend timed; `process`
finishes each step's audio (trim, speed, loudness), with the words of the
original text that start in it (`words.py`), and records both; `finish` gives the words
still due when the backend is done; `complete` stores a finished utterance
in the cache.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Protocol

from media_server.audio.pcm import Pcm
from media_server.engine.cache import AudioCache, CacheKey
from media_server.engine.postprocess import EMPTY, PostProcessor
from media_server.engine.types import PHONEMES, RequestTimings, Speech, SynthesisRequest, Voice, WordTiming
from media_server.engine.words import Placement, WordSpan, WordTracker
from media_server.text.spoken import spoken_text


class Finisher(Placement, Protocol):
    """What finishes each step's audio (`PostProcessor`: trim, speed, loudness) and knows where samples went."""

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
        self._words: WordTracker | None = None
        self._emitted: list[Speech] = []

    def begin(self) -> tuple[SynthesisRequest, tuple[Speech, ...] | None]:
        """The request as the backend should see it, and the cached audio if there is some."""
        started = time.monotonic()
        self.timings.queue_wait_s = started - self.request.received_at
        spoken = spoken_text(self.request.text, self.request.ssml, self.language, PHONEMES in self.voice.capabilities)
        text = spoken.said.text
        self._words = WordTracker(spoken.written, spoken.said, self.voice.sample_rate)
        prepared = replace(self.request, text=text, language=self.language, ssml=False)
        key = CacheKey.for_request(prepared, self.voice, text=text, language=self.language, written=spoken.written)
        cached = None
        if self._cache.cacheable(key):
            hit = self._cache.get(key)
            self.cache_hit = hit is not None
            cached = hit.chunks if hit is not None else None
            self._key = None if hit is not None else key
        self.timings.text_prep_s = time.monotonic() - started
        return prepared, cached

    def timed(self, spans: list[WordSpan]) -> None:
        """Word spans the backend timed in its last step."""
        if self._words is not None:
            self._words.add(spans)

    def process(self, pcm: Pcm) -> Speech:
        """One step's audio finished, with the words whose start it carries."""
        finished = self._post.process(pcm)
        return self._record(Speech(finished, self._released(final=False)))

    def finish(self) -> Speech | None:
        """The backend is done: the words still due (their start was sent, their end only now known), if any."""
        words = self._released(final=True)
        return self._record(Speech(EMPTY, words)) if words else None

    def _released(self, final: bool) -> tuple[WordTiming, ...]:
        return () if self._words is None else self._words.release(self._post, final)

    def _record(self, speech: Speech) -> Speech:
        if self._key is not None and (len(speech.pcm) or speech.words):
            self._emitted.append(speech)
        return speech

    def complete(self) -> None:
        if self._key is not None and self._emitted:
            self._cache.put(self._key, self._emitted, self.voice.sample_rate)
            self._emitted = []
