"""`EngineBoard`: where engine replicas post their numbers and cloned voices, and every gateway reads them.

A small Ray actor (no CPU reserved), one per cluster, found by name. Each
replica posts its `EngineStats` snapshot, its real-time slack and its observer
events every `REPORT_INTERVAL_S`; a gateway reads the latest snapshot of every
replica that posted within `STALE_AFTER_S` (the live ones), and the events since
the last it saw, so each gateway's `/metrics` has the engine's histograms and
per-replica figures. The board also keeps each cloned voice's reference audio,
so any replica can load a clone it has never seen (`replica.py`).

Serve replicas cannot be called one by one through a deployment handle (it
routes each call to one replica of its choosing); a board they post to is how
a gateway hears from all of them, with public Ray APIs only.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray

from media_server.gateway.events import MAX_BUFFERED_EVENTS, Event
from media_server.gateway.wire import Message

BOARD_NAME = "media-server-engine-board"
BOARD_NAMESPACE = "media-server"
REPORT_INTERVAL_S = 0.5
STALE_AFTER_S = 3.0
"""A replica that has not posted for this long is taken for gone (it posts every `REPORT_INTERVAL_S`)."""


@dataclass(frozen=True)
class Clone:
    """What a replica needs to make a cloned voice its own: the reference audio and what came with it."""

    voice: Message
    reference: bytes
    sample_rate: int
    transcript: str | None
    name: str


@dataclass(frozen=True)
class Reading:
    """What a gateway reads from the board at each poll."""

    replicas: dict[str, Message]
    events: list[Event]
    last_event: int
    clones: list[Message]


class EngineBoard:
    """The cluster's notice board (a Ray actor: `board_handle` creates or finds it)."""

    def __init__(self) -> None:
        self._replicas: dict[str, tuple[float, Message]] = {}
        self._events: deque[tuple[int, Event]] = deque(maxlen=MAX_BUFFERED_EVENTS)
        self._sequence = 0
        self._clones: dict[str, Clone] = {}

    def post(self, replica: str, report: Message, events: list[Event]) -> None:
        """A replica's latest post (its stats, its `policy.Report`, its node) and the observer events since its last."""
        self._replicas[replica] = (time.monotonic(), report)
        for event in events:
            self._sequence += 1
            self._events.append((self._sequence, event))

    def read(self, after: int) -> Reading:
        """The live replicas' latest reports, the events after sequence number `after`, the clones' voices."""
        now = time.monotonic()
        return Reading(
            replicas={replica: report for replica, (at, report) in self._replicas.items() if now - at <= STALE_AFTER_S},
            events=[event for sequence, event in self._events if sequence > after],
            last_event=self._sequence,
            clones=[clone.voice for clone in self._clones.values()],
        )

    def add_clone(self, voice_id: str, clone: Clone) -> None:
        self._clones[voice_id] = clone

    def clone(self, voice_id: str) -> Clone | None:
        return self._clones.get(voice_id)

    def remove_clone(self, voice_id: str) -> None:
        self._clones.pop(voice_id, None)


def board_handle() -> Any:
    """The cluster's board actor, created on first use (detached: it outlives the gateway or replica that made it)."""
    actor = ray.remote(num_cpus=0, max_restarts=-1)(EngineBoard)
    return actor.options(name=BOARD_NAME, namespace=BOARD_NAMESPACE, get_if_exists=True, lifetime="detached").remote()
