"""`PlanStream`: the audio of a request spoken in several parts (`plan.py`), as one `AudioStream`.

Parts of speech are submitted to the core one after another, each when the
one before has ended; the first at once, so a refusal (busy, over the
first-audio budget) comes before anything is sent. A later part of a
real-time request is due when the audio before it will have played out,
counted from its first chunk. Silences are exact: `seconds` times the
stream's rate, in zero samples. The stream's rate is its first voice's; a
part in a voice of another rate is resampled to it. A later part can still
be refused (busy): the stream then raises that error where the part would
have begun, as any synthesis failing mid-stream does.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from types import TracebackType

import numpy as np

from media_server.audio.resample import Resampler
from media_server.engine.plan import Part, Silence, Speech
from media_server.engine.seam import AudioStream, EngineCore
from media_server.engine.types import AudioChunk, Pcm, Priority, SynthesisRequest


class PlanStream:
    def __init__(self, core: EngineCore, request: SynthesisRequest, parts: list[Part]) -> None:
        speeches = [part for part in parts if isinstance(part, Speech)]
        first = speeches[0]
        self._core = core
        self._parts: deque[Part] = deque(parts)
        self._head: AudioStream | None = core.submit(first.request, first.voice, first.language)
        self.request = request
        self.voice = first.voice
        self.language = first.language
        self.sample_rate = first.voice.sample_rate
        self.timings = self._head.timings
        self._current: AudioStream | None = None
        self._resampler: Resampler | None = None
        self._index = 0
        self._first_at: float | None = None
        self._audio_s = 0.0
        self._closed = False

    async def wait_ready(self) -> None:
        if self._parts and isinstance(self._parts[0], Speech) and self._head is not None:
            await self._head.wait_ready()

    def __aiter__(self) -> PlanStream:
        return self

    async def __anext__(self) -> AudioChunk:
        while not self._closed:
            if self._current is not None:
                try:
                    chunk = await self._current.__anext__()
                except StopAsyncIteration:
                    self._current = None
                    tail = self._resampler.flush() if self._resampler is not None else None
                    if tail is not None and len(tail):
                        return self._chunk(tail)
                    continue
                pcm = chunk.pcm if self._resampler is None else self._resampler.process(chunk.pcm)
                return self._chunk(pcm)
            if not self._parts:
                break
            part = self._parts.popleft()
            if isinstance(part, Silence):
                return self._chunk(np.zeros(round(part.seconds * self.sample_rate), dtype=np.int16))
            self._current = self._submit(part)
            rate = self._current.sample_rate
            self._resampler = Resampler(rate, self.sample_rate) if rate != self.sample_rate else None
        self.close()
        raise StopAsyncIteration

    def _submit(self, part: Speech) -> AudioStream:
        if self._head is not None:
            head, self._head = self._head, None
            return head
        request = part.request
        if request.priority == Priority.REALTIME and self._first_at is not None:
            request = replace(request, received_at=time.monotonic(), deadline=self._first_at + self._audio_s)
        else:
            request = replace(request, received_at=time.monotonic())
        return self._core.submit(request, part.voice, part.language)

    def _chunk(self, pcm: Pcm) -> AudioChunk:
        if self._first_at is None:
            self._first_at = time.monotonic()
        self._audio_s += len(pcm) / self.sample_rate
        chunk = AudioChunk(pcm=pcm, sample_rate=self.sample_rate, request_id=self.request.id, index=self._index)
        self._index += 1
        return chunk

    async def __aenter__(self) -> PlanStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the part being spoken (and the first, if it never began); nothing more is submitted."""
        self._closed = True
        for stream in (self._current, self._head):
            if stream is not None:
                stream.close()
        self._current = self._head = None
        self._parts.clear()
