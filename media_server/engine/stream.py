"""`ResultStream`: one request's audio as the engine seam's `AudioStream`, whatever delivers it.

A core hands results to the stream one at a time (audio with the words it
carries, None at the end, or an error); the stream turns them into `AudioChunk`s, holds the first one for
`wait_ready` (a route can still answer with an error status before it sends
anything), and, when closed early, tells its core to stop the request.
`LocalStream` (`core.py`) is fed by the scheduler's threads, the gateway's
`RemoteStream` by a worker's socket.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from media_server.engine.types import AudioChunk, RequestTimings, Speech, SynthesisRequest, Voice
from media_server.errors import MediaServerError

Result = Speech | None | MediaServerError
"""What a core delivers: audio and its words, None when the request is done, or why it failed."""


class ResultStream(ABC):
    def __init__(self, request: SynthesisRequest, voice: Voice, language: str, timings: RequestTimings) -> None:
        self.request = request
        self.voice = voice
        self.language = language
        self.sample_rate = voice.sample_rate
        self.timings = timings
        self._index = 0
        self._finished = False
        self._held = False
        self._head: Result = None

    @abstractmethod
    async def _receive(self) -> Result:
        """The next result from the core."""

    @abstractmethod
    def _took(self) -> None:
        """One chunk was handed to the reader (back-pressure)."""

    @abstractmethod
    def _stop(self, early: bool) -> None:
        """The stream is over: `early` when the request did not run to its end (abort it)."""

    async def wait_ready(self) -> None:
        """Wait until the first step is done; raises its error if it failed."""
        if not self._held and not self._finished:
            self._head = await self._receive()
            self._held = True
        if isinstance(self._head, MediaServerError):
            self._end(early=False)
            raise self._head

    def __aiter__(self) -> ResultStream:
        return self

    async def __anext__(self) -> AudioChunk:
        await self.wait_ready()
        if self._finished:
            raise StopAsyncIteration
        result, self._held = self._head, False
        if result is None:
            self._end(early=False)
            raise StopAsyncIteration
        assert not isinstance(result, MediaServerError)
        self._took()
        chunk = AudioChunk(
            pcm=result.pcm,
            sample_rate=self.sample_rate,
            request_id=self.request.id,
            index=self._index,
            words=result.words,
        )
        self._index += 1
        return chunk

    async def __aenter__(self) -> ResultStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._end(early=True)

    def _end(self, early: bool) -> None:
        if not self._finished:
            self._finished = True
            self._stop(early)
