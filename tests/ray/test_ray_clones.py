"""`MODE=ray` with cloned voices: a clone made once on one replica reaches replicas that never saw it.

The gateway runs its own one-machine cluster (the session cluster of
`conftest.py` runs the Piper engine under the same application name) with two
replicas of the tiny random-weight Qwen3-TTS Base checkpoint on the CPU
(`tests/qwen_checkpoint.py`). After the clone, its file is removed from the
voice directory the replicas share, and every replica is killed: Serve's new
replicas start knowing nothing of it, so a call for it can only be served from
the reference the cloning replica left on the cluster's board.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from clients.metrics import scrape
from loadtest.ray_mode import replica_processes
from tests.integration.test_voices import clone_form, reference_wav
from tests.server import RunningServer, start_server

pytest.importorskip("qwen_tts")

READY = "media_server_replica_ready"


@pytest.fixture(scope="module")
def qwen_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from tests.qwen_checkpoint import tiny_server_env

    env = {**tiny_server_env(tmp_path_factory), "MODE": "ray", "ENGINE_REPLICAS": "2", "AUDIO_CACHE_BYTES": "0"}
    server = start_server(env)
    yield server
    server.stop()


async def ready_replicas(http: aiohttp.ClientSession, url: str) -> set[str]:
    samples = (await scrape(url, http=http)).samples
    return {dict(labels)["replica"] for (name, labels), value in samples.items() if name == READY and value == 1.0}


async def until_ready(
    http: aiohttp.ClientSession, url: str, count: int, unlike: set[str], timeout_s: float
) -> set[str]:
    """`count` ready replicas, none of them named in `unlike`."""
    async with asyncio.timeout(timeout_s):
        while True:
            ready = await ready_replicas(http, url) - unlike
            if len(ready) >= count:
                return ready
            await asyncio.sleep(0.25)


def remove_stored_clones(directory: Path) -> int:
    stored = list(directory.rglob("*.pt"))
    for path in stored:
        path.unlink()
    return len(stored)


@pytest.mark.asyncio
async def test_a_clone_made_once_is_spoken_by_replicas_started_after_it(qwen_gateway: RunningServer) -> None:
    url = qwen_gateway.url
    async with aiohttp.ClientSession() as http:
        first = await until_ready(http, url, 2, set(), timeout_s=120)
        async with http.post(f"{url}/v1/voices", data=clone_form(reference_wav(), transcript="Hello there.")) as r:
            assert r.status == 201, await r.text()
            voice = (await r.json())["id"]
        # The cloning replica kept it on disk: removed, no new replica can find it there.
        assert remove_stored_clones(Path(qwen_gateway.env["VOICE_CACHE_DIR"])) == 1
        replicas = replica_processes(qwen_gateway.process.pid)
        assert len(replicas) == 2
        for process in replicas:
            os.kill(process.pid, signal.SIGKILL)
        await until_ready(http, url, 1, first, timeout_s=180)
        async with http.post(f"{url}/tts", json={"text": "Speaking with a cloned voice.", "voice": voice}) as r:
            assert r.status == 200, await r.text()
            assert len(await r.read()) > 1000
