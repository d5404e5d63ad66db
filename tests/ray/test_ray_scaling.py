"""`MODE=ray` autoscaling end to end: a gateway on its own one-machine cluster, 1 to 3 Piper replicas.

The engine starts with one replica (`ENGINE_REPLICAS=1`) and may grow to three
(`ENGINE_MAX_REPLICAS=3`). Batch load is offered in two steps, each below what
the replicas then running admit (`MAX_BATCH_QUEUE` each: a closed-loop client
whose next request reaches a full queue before its last one has left it would
be refused, rightly); the scaling policy must add replicas as the batch
occupancy rises past its target, and every request, batch or real-time, must
succeed meanwhile. A batch client honours `503 busy` and its `Retry-After`, as
HTTP clients (the OpenAI SDK among them) do: while replicas start, the router's
view of a replica's batch queue can lag by a call, and such a refusal is
back-pressure, not a failure; a real-time request is never refused, and no
request fails in any other way. The gateway's
`/metrics` says which replicas report (it is not the test's cluster: the test
process is not joined to it). The real-time target is set out of reach so that
batch occupancy is the signal at work here (the first-audio signal and the
deadline-miss rule are checked by the unit tests of `policy.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from clients.metrics import scrape
from tests.server import RunningServer, start_server

BATCH_CAP = 4
"""`MAX_BATCH_QUEUE` of each replica."""
BATCH_CLIENTS = 3
"""Batch clients per running replica at each step: 3/4 occupancy, half again the policy's target, so one more."""
BATCH_TEXT = "A file for a caller who waits for all of it. It takes the engine a little while to make."
REALTIME_TEXT = "A listener hears this as it is made, while the engine scales."
READY = "media_server_replica_ready"
QUEUED_BATCH = "media_server_replica_queued_batch_requests"


@pytest.fixture(scope="module")
def scaling_gateway() -> Iterator[RunningServer]:
    server = start_server(
        {
            "MODE": "ray",
            "ENGINE_REPLICAS": "1",
            "ENGINE_MAX_REPLICAS": "3",
            "ENGINE_WORKERS": "1",
            "MAX_BATCH_QUEUE": str(BATCH_CAP),
            "ENGINE_TARGET_FIRST_AUDIO_MS": "60000",
            "AUDIO_CACHE_BYTES": "0",
        }
    )
    yield server
    server.stop()


@dataclass
class Load:
    """Closed-loop clients: each sends its next request when the last one is answered; every status is kept."""

    url: str
    statuses: list[tuple[str, int, str]] = field(default_factory=list)
    """Each answer's route, status, and error code and message (empty on success)."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def add(self, clients: int, path: str, text: str) -> None:
        for _ in range(clients):
            self.tasks.append(asyncio.create_task(self._client(path, text)))

    async def _client(self, path: str, text: str) -> None:
        async with aiohttp.ClientSession(self.url) as http:
            while True:
                async with http.post(path, json={"text": text}) as resp:
                    body = await resp.read()
                    error = {} if resp.status == 200 else json.loads(body)["error"]
                    code = f"{error['code']}: {error['message']}" if error else ""
                    self.statuses.append((path, resp.status, code))
                    retry_after_s = float(resp.headers.get("Retry-After", 0)) if resp.status == 503 else 0.0
                if retry_after_s:
                    await asyncio.sleep(retry_after_s)


@contextlib.asynccontextmanager
async def load_on(server: RunningServer) -> AsyncIterator[Load]:
    load = Load(server.url)
    try:
        yield load
    finally:
        for task in load.tasks:
            task.cancel()
        await asyncio.gather(*load.tasks, return_exceptions=True)


async def per_replica(http: aiohttp.ClientSession, url: str, name: str) -> dict[str, float]:
    """One `media_server_replica_*` figure of every replica the gateway hears from."""
    samples = (await scrape(url, http=http)).samples
    return {dict(labels)["replica"]: value for (metric, labels), value in samples.items() if metric == name}


async def until_replicas(http: aiohttp.ClientSession, url: str, count: int, timeout_s: float) -> set[str]:
    """The replicas reporting, once there are `count` of them."""
    async with asyncio.timeout(timeout_s):
        while True:
            ready = {replica for replica, value in (await per_replica(http, url, READY)).items() if value == 1.0}
            if len(ready) >= count:
                return ready
            await asyncio.sleep(0.25)


@pytest.mark.asyncio
async def test_the_engine_scales_from_one_replica_to_three_under_load_and_no_request_fails(
    scaling_gateway: RunningServer,
) -> None:
    url = scaling_gateway.url
    async with aiohttp.ClientSession() as http, load_on(scaling_gateway) as load:
        assert len(await until_replicas(http, url, 1, timeout_s=30)) == 1
        load.add(1, "/tts/pcm", REALTIME_TEXT)
        load.add(BATCH_CLIENTS, "/tts", BATCH_TEXT)
        await until_replicas(http, url, 2, timeout_s=120)
        load.add(BATCH_CLIENTS, "/tts", BATCH_TEXT)  # 3/4 of the two replicas' queues again
        replicas = await until_replicas(http, url, 3, timeout_s=120)
        served: set[str] = set()
        async with asyncio.timeout(60):  # the load goes on, spread over all three
            while served != replicas:
                batch = await per_replica(http, url, QUEUED_BATCH)
                served |= {replica for replica in replicas if batch.get(replica, 0) > 0}
                await asyncio.sleep(0.1)
    assert len(replicas) == 3
    refused = [answer for answer in load.statuses if answer[1] == 503 and answer[2].startswith("busy:")]
    failed = [answer for answer in load.statuses if answer[1] != 200 and answer not in refused]
    assert not failed, failed
    assert all(path == "/tts" for path, _, _ in refused), refused  # real-time work is never refused
    print(f"scaling: {len(refused)} batch refusals (retried) of {len(load.statuses)} answers")
    assert {path for path, _, _ in load.statuses} == {"/tts", "/tts/pcm"}
