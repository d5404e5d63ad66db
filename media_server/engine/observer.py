"""EngineObserver: the per-event numbers the engine reports (histograms need each event).

The engine calls these from its worker threads, outside its locks; whoever
collects metrics implements them. The engine never imports a metrics library.
"""

from __future__ import annotations

from typing import Protocol

from media_server.engine.types import Priority


class EngineObserver(Protocol):
    def observe_queue_wait(self, priority: Priority, seconds: float) -> None: ...

    def observe_step(self, seconds: float, batch_size: int, audio_s: float) -> None: ...

    def record_cache_lookup(self, cache: str, hit: bool) -> None: ...

    def observe_chunk_transit(self, seconds: float) -> None:
        """A chunk's time from the engine replica that made it to the gateway streaming it (`MODE=ray` only)."""


class NoObserver:
    def observe_queue_wait(self, priority: Priority, seconds: float) -> None:
        pass

    def observe_step(self, seconds: float, batch_size: int, audio_s: float) -> None:
        pass

    def record_cache_lookup(self, cache: str, hit: bool) -> None:
        pass

    def observe_chunk_transit(self, seconds: float) -> None:
        pass
