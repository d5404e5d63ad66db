"""`PlanStream`: the audio of a request spoken in several parts (`plan.py`), as one `AudioStream`.

Parts of speech are submitted to the core one after another, each when the
one before has ended; the first at once, so a refusal (busy, over the
first-audio budget) comes before anything is sent. A later part of a
real-time request is due when the audio before it will have played out,
counted from its first chunk. Silences are exact: `seconds` times the
stream's rate, in zero samples. The stream's rate is its first voice's; a
part in a voice of another rate is resampled to it. A later part can still
be refused (busy): the stream then raises that error where the part would
have begun, as any synthesis failing mid-stream does. A part's word timings
are moved into the whole request's time (after the audio and silences before
it).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace

import numpy as np

from media_server.audio.resample import Resampler
from media_server.engine.plan import Part, Silence, Speech
from media_server.engine.seam import AudioStream, EngineCore
from media_server.engine.stream import Result, ResultStream
from media_server.engine.types import Priority, SynthesisRequest, WordTiming
from media_server.engine.types import Speech as Said
from media_server.errors import MediaServerError


class PlanStream(ResultStream):
    def __init__(self, core: EngineCore, request: SynthesisRequest, parts: list[Part]) -> None:
        first = next(part for part in parts if isinstance(part, Speech))
        head = core.submit(first.request, first.voice, first.language)
        super().__init__(request, first.voice, first.language, head.timings)
        self._core = core
        self._parts: deque[Part] = deque(parts)
        self._first: AudioStream | None = head
        self._current: AudioStream | None = None
        self._resampler = Resampler(self.sample_rate, self.sample_rate)
        """The current part's audio to the request's rate (passes it through when they match)."""
        self._first_at: float | None = None
        self._audio_s = 0.0
        self._part_at_s = 0.0

    async def _receive(self) -> Result:
        try:
            said = await self._next()
        except MediaServerError as exc:
            return exc
        if said is not None:
            self._first_at = self._first_at or time.monotonic()
            self._audio_s += len(said.pcm) / self.sample_rate
        return said

    async def _next(self) -> Said | None:
        while True:
            if self._current is not None:
                try:
                    chunk = await self._current.__anext__()
                except StopAsyncIteration:
                    self._current = None
                    tail = self._resampler.flush()
                    if len(tail):
                        return Said(tail)
                    continue
                pcm = self._resampler.process(chunk.pcm)
                return Said(pcm, tuple(self._shifted(word) for word in chunk.words))
            if not self._parts:
                return None
            part = self._parts.popleft()
            if isinstance(part, Silence):
                return Said(np.zeros(round(part.seconds * self.sample_rate), dtype=np.int16))
            self._current = self._submit(part)
            self._part_at_s = self._audio_s
            rate = self._current.sample_rate
            self._resampler = Resampler(rate, self.sample_rate)

    def _shifted(self, word: WordTiming) -> WordTiming:
        """A part's word in the whole request's time (the part began after the audio before it)."""
        return replace(word, start_s=word.start_s + self._part_at_s, end_s=word.end_s + self._part_at_s)

    def _submit(self, part: Speech) -> AudioStream:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        request = replace(part.request, received_at=time.monotonic())
        if request.priority == Priority.REALTIME and self._first_at is not None:
            request = replace(request, deadline=self._first_at + self._audio_s)
        return self._core.submit(request, part.voice, part.language)

    def _took(self) -> None:
        """Each part's own stream is read only as fast as this one: back-pressure is theirs."""

    def _stop(self, early: bool) -> None:
        """Stop the part being spoken (and the first, if it never began); nothing more is submitted."""
        for stream in (self._current, self._first):
            if stream is not None:
                stream.close()
        self._current = self._first = None
        self._parts.clear()
