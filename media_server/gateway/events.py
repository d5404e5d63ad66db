"""The engine's observer events, carried from the worker to the gateway's observer (metrics).

The worker's engine reports each queue wait, step and cache lookup to an
`EventBuffer` (from its threads); the gateway drains it with every stats poll
and replays the events into its own `EngineObserver`, so gateway mode keeps
the histograms standalone mode has.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from media_server.engine.observer import EngineObserver
from media_server.engine.types import Priority

# About a minute of steps at full load; older events are dropped if the gateway stops polling.
MAX_BUFFERED_EVENTS = 20_000

Event = list[Any]


class EventBuffer:
    """An `EngineObserver` that keeps events until `drain` (deque appends and pops are thread-safe)."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque(maxlen=MAX_BUFFERED_EVENTS)

    def observe_queue_wait(self, priority: Priority, seconds: float) -> None:
        self._events.append(["queue_wait", int(priority), seconds])

    def observe_step(self, seconds: float, batch_size: int, audio_s: float) -> None:
        self._events.append(["step", seconds, batch_size, audio_s])

    def record_cache_lookup(self, cache: str, hit: bool) -> None:
        self._events.append(["cache_lookup", cache, hit])

    def observe_chunk_transit(self, seconds: float) -> None:
        self._events.append(["chunk_transit", seconds])

    def drain(self) -> list[Event]:
        drained: list[Event] = []
        while self._events:
            drained.append(self._events.popleft())
        return drained


def replay(events: list[Event], observer: EngineObserver) -> None:
    for name, *args in events:
        if name == "queue_wait":
            observer.observe_queue_wait(Priority(args[0]), float(args[1]))
        elif name == "step":
            observer.observe_step(float(args[0]), int(args[1]), float(args[2]))
        elif name == "cache_lookup":
            observer.record_cache_lookup(str(args[0]), bool(args[1]))
        elif name == "chunk_transit":
            observer.observe_chunk_transit(float(args[0]))
