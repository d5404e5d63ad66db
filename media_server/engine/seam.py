"""The engine's two seams, as types.

- `Engine` is what routes, tracks and sessions use: the engine front
  (`front.py`), the same whatever runs the model.
- `EngineCore` is what the front drives: where admitted requests queue and are
  synthesized. `LocalCore` (`core.py`) runs the scheduler and backend in this
  process; the gateway's `RemoteCore` (`media_server.gateway.remote`) reaches
  one in a supervised worker process; a core on a cluster plugs in the same way.

Both hand out `AudioStream`s. Nothing outside `engine/` and `gateway/` knows
which core it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from media_server.engine.dictionaries import DictionaryStore
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


class Lifecycle(Protocol):
    """What the front and its core share: starting, stopping, state, health, numbers."""

    @property
    def backend_name(self) -> str: ...

    @property
    def state(self) -> str:
        """`ready`, `loading` or `idle`."""

    async def start(self) -> float | None:
        """Start; with `PRELOAD_MODEL`, load now and return the seconds it took (None when left for later)."""

    async def stop(self) -> None: ...

    def observe(self, observer: EngineObserver) -> None:
        """Report per-step events to `observer` (metrics)."""

    def health(self) -> bool:
        """Loaded, and not stuck."""

    def stats(self) -> EngineStats: ...


class Engine(Lifecycle, Protocol):
    dictionaries: DictionaryStore
    """The stored pronunciation dictionaries requests may name."""

    def voices(self) -> Sequence[Voice]: ...

    def resolve_voice(self, voice_id: str | None, language: str | None = None) -> Voice: ...

    def validate_text(self, text: str) -> None: ...

    def stream(self, request: SynthesisRequest) -> AudioStream:
        """Validate and admit `request` (raises MediaServerError when refused) and return its audio."""

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """Clone a voice from reference audio; raises InvalidRequest when the backend cannot."""

    async def delete_voice(self, voice_id: str) -> None: ...


class EngineCore(Lifecycle, Protocol):
    def wake(self) -> None:
        """A request is coming: mark the core used, and start loading the model if it is not loaded."""

    def voices(self) -> Sequence[Voice]:
        """The voices known so far (empty before the model was ever loaded)."""

    def submit(self, request: SynthesisRequest, voice: Voice, language: str) -> AudioStream:
        """Queue a request the front has checked; raises `Busy` (queue full, first audio over budget) at once."""

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice: ...

    async def delete_voice(self, voice_id: str) -> None: ...
