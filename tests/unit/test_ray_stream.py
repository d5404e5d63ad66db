"""`RayStream`'s failover over a fake core at its seam (the replica calls): a re-issue that a replica takes up
goes on where the listener is, one that none takes up ends in `engine_unavailable`, and none at all is
tried once no replica is live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from ray.exceptions import RayActorError

from media_server.engine.types import RequestTimings, SynthesisRequest, Voice
from media_server.errors import EngineUnavailable
from media_server.gateway.ray import core as ray_core
from media_server.gateway.ray.calls import Audio, Call, Item, Start, item_to_wire
from media_server.gateway.ray.core import RayStream

VOICE = Voice(id="v", name="v", backend="piper", languages=("en",), sample_rate=1000)
TEXT = "First sentence here. Second sentence here."


class Response:
    """One streaming call: its items, then the replica's death (`dies`), or nothing ever (`hangs`)."""

    def __init__(self, items: list[Item], dies: bool = False, hangs: bool = False) -> None:
        self._items = [item_to_wire(item) for item in items]
        self._dies, self._hangs = dies, hangs
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[tuple[Any, ...]]:
        return self

    async def __anext__(self) -> tuple[Any, ...]:
        if self._items:
            return self._items.pop(0)
        if self._dies:
            raise RayActorError()
        if self._hangs:
            await asyncio.Event().wait()
        raise StopAsyncIteration

    def cancel(self) -> None:
        self.cancelled = True


class FakeCore:
    """The calls `RayStream` makes of `RayCore`: each `call` answers the next scripted response."""

    def __init__(self, *responses: Response, live: bool = True) -> None:
        self.responses = list(responses)
        self.calls: list[Call] = []
        self.live = live
        self.died: list[str] = []

    def call(self, call: Call, voice: Voice) -> Response:
        self.calls.append(call)
        return self.responses.pop(0)

    def live_replicas(self) -> list[str]:
        return ["r2"] if self.live else []

    def replica_died(self, replica: str) -> None:
        self.died.append(replica)

    def record_failover(self) -> None:
        pass

    def record_transit(self, seconds: float) -> None:
        pass


def start(replica: str) -> Start:
    return Start(replica, deterministic=True, timings=RequestTimings())


def pcm(samples: int) -> np.ndarray:
    return np.ones(samples, dtype=np.int16)


async def heard(core: FakeCore) -> tuple[int, Exception | None]:
    """Samples the listener got from a stream over `core`, and the error it ended with."""
    stream = RayStream(core, SynthesisRequest(text=TEXT), VOICE, "en")  # type: ignore[arg-type]
    samples = 0
    try:
        async with stream:
            async for chunk in stream:
                samples += len(chunk.pcm)
    except EngineUnavailable as exc:
        return samples, exc
    return samples, None


@pytest.mark.asyncio
async def test_a_re_issue_resumes_at_the_sample_the_listener_had_reached() -> None:
    first = Response([start("r1"), Audio(0, pcm(300))], dies=True)
    rest = Response([start("r2"), Audio(0, pcm(200)), Audio(1, pcm(400))])
    core = FakeCore(first, rest)
    assert await heard(core) == (900, None)
    assert core.died == ["r1"]
    assert (core.calls[1].first_segment, core.calls[1].skip_samples) == (0, 300)


@pytest.mark.asyncio
async def test_a_re_issue_no_replica_takes_up_ends_in_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_core, "FAILOVER_START_TIMEOUT_S", 0.05)
    never = Response([], hangs=True)
    core = FakeCore(Response([start("r1"), Audio(0, pcm(300))], dies=True), never)
    samples, error = await heard(core)
    assert samples == 300 and isinstance(error, EngineUnavailable)
    assert never.cancelled


@pytest.mark.asyncio
async def test_with_no_live_replica_nothing_is_re_issued() -> None:
    core = FakeCore(Response([start("r1"), Audio(0, pcm(300))], dies=True), live=False)
    samples, error = await heard(core)
    assert samples == 300 and isinstance(error, EngineUnavailable)
    assert len(core.calls) == 1
