"""The engine seam as types: what routes, tracks and sessions may use of an engine.

`EngineClient` (in this process) and the gateway's remote engine (a worker
process behind a Unix socket) both satisfy `Engine`; nothing outside `engine/`
and `gateway/` needs to know which one it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from media_server.engine.observer import EngineObserver
from media_server.engine.types import AudioChunk, EngineStats, Pcm, RequestTimings, SynthesisRequest, Voice


class AudioStream(Protocol):
    """One admitted request's audio: an async iterator of chunks, closed by its `async with`."""

    request: SynthesisRequest
    voice: Voice
    language: str
    sample_rate: int
    timings: RequestTimings

    async def wait_ready(self) -> None:
        """Wait until the first chunk is made; raises the request's error if it failed."""

    def __aiter__(self) -> AudioStream: ...

    async def __anext__(self) -> AudioChunk: ...

    async def __aenter__(self) -> AudioStream: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def close(self) -> None:
        """Stop the request (at the engine's next step)."""


class Engine(Protocol):
    @property
    def backend_name(self) -> str: ...

    @property
    def state(self) -> str:
        """`ready`, `loading` or `idle`."""

    async def start(self) -> float | None: ...

    async def stop(self) -> None: ...

    def observe(self, observer: EngineObserver) -> None: ...

    def health(self) -> bool: ...

    def voices(self) -> Sequence[Voice]: ...

    def resolve_voice(self, voice_id: str | None, language: str | None = None) -> Voice: ...

    def validate_text(self, text: str) -> None: ...

    def stream(self, request: SynthesisRequest) -> AudioStream:
        """Validate and admit `request` (raises MediaServerError when refused) and return its audio."""

    def stats(self) -> EngineStats: ...

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """Clone a voice from reference audio; raises InvalidRequest when the backend cannot."""

    async def delete_voice(self, voice_id: str) -> None: ...
