"""`MODE=ray` end to end: a real gateway, a real Ray cluster, Piper replicas, real WebRTC and HTTP clients.

Replicas are found through the cluster's board (what each one serves right
now) and killed as Ray actors (`ray.kill`), as a crashed replica process would
die; nodes are removed from the cluster as a lost host would go.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.request
import wave
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from ray import serve
from ray.cluster_utils import Cluster

from clients.rtc import SpeechClient
from media_server.gateway.ray.board import Reading
from media_server.gateway.ray.cluster import ENGINE_APP, ENGINE_DEPLOYMENT
from tests.ray.conftest import board, kill_replica
from tests.server import RunningServer, start_server, wait_ready

LONG_TEXT = " ".join(f"This is sentence number {n} of a long text that keeps a replica busy." for n in range(1, 7))


async def reading() -> Reading:
    result: Reading = await board().read.remote(0)
    return result


async def replica_serving(timeout_s: float = 10.0) -> str:
    """The replica with a request admitted now (its post reaches the board within half a second)."""
    async with asyncio.timeout(timeout_s):
        while True:
            for replica, report in (await reading()).replicas.items():
                if report["stats"]["queued"] > 0:
                    return replica
            await asyncio.sleep(0.1)


async def until_idle(timeout_s: float = 10.0) -> dict[str, Any]:
    """The replicas' reports once none has a request admitted."""
    async with asyncio.timeout(timeout_s):
        while True:
            replicas = (await reading()).replicas
            if replicas and all(report["stats"]["queued"] == 0 for report in replicas.values()):
                return replicas
            await asyncio.sleep(0.1)


async def audio_ms(server: RunningServer, text: str) -> float:
    """How long `text` sounds, from a whole PCM answer."""
    async with aiohttp.ClientSession(server.url) as http, http.post("/tts/pcm", json={"text": text}) as resp:
        assert resp.status == 200
        return len(await resp.read()) / 2 / int(resp.headers["X-Sample-Rate"]) * 1000


@pytest.mark.asyncio
async def test_webrtc_speech_through_replicas(ray_gateway: RunningServer) -> None:
    peer = SpeechClient(ray_gateway.url)
    try:
        await peer.connect()
        sent_at = peer.send({"type": "speak", "text": "Hello from a Ray Serve replica, via the gateway.", "id": "r1"})
        _, done = await peer.wait_event("done", "r1", timeout_s=30)
        assert done["audio_ms"] > 1000
        assert len(peer.received.audible(since=sent_at)) * 20 > 1000
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_rest_speech_through_replicas(ray_gateway: RunningServer) -> None:
    body = {"model": "tts-1", "input": "The replicas speak. The gateway streams it.", "voice": "alloy"}
    async with aiohttp.ClientSession(ray_gateway.url) as http:
        async with http.post("/v1/audio/speech", json={**body, "response_format": "wav"}) as resp:
            assert resp.status == 200
            with wave.open(io.BytesIO(await resp.read())) as wav:
                assert wav.getnframes() / wav.getframerate() > 1.5
        async with http.post("/tts", json={"text": "A batch request, on a replica."}) as resp:
            assert resp.status == 200
            assert len(await resp.read()) > 22050
        async with http.post("/v1/audio/speech", json={**body, "voice": "nobody"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "unknown_voice"


@pytest.mark.asyncio
async def test_barge_in_frees_the_replicas_slot(ray_gateway: RunningServer) -> None:
    cancelled_before = sum(report["stats"]["cancelled"] for report in (await until_idle()).values())
    peer = SpeechClient(ray_gateway.url)
    try:
        await peer.connect()
        peer.send({"type": "speak", "text": LONG_TEXT, "id": "c1"})
        await peer.wait_event("audio_start", "c1")
        await replica_serving()
        peer.send({"type": "cancel"})
        await peer.wait_event("cancelled", "c1")
        cancelled_at = time.monotonic()
        replicas = await until_idle()
        # The slot is free once the replica's next post shows it (posts come every 0.5 s).
        assert time.monotonic() - cancelled_at < 2.0
        assert sum(report["stats"]["cancelled"] for report in replicas.values()) == cancelled_before + 1
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_a_killed_replica_mid_utterance_finishes_it_on_another(ray_gateway: RunningServer) -> None:
    whole_ms = await audio_ms(ray_gateway, LONG_TEXT)
    await until_idle()
    peer = SpeechClient(ray_gateway.url)
    try:
        await peer.connect()
        peer.send({"type": "speak", "text": LONG_TEXT, "id": "k1"})
        await peer.wait_event("audio_start", "k1")
        await kill_replica(await replica_serving())
        killed_at = time.monotonic()
        _, end = await peer.wait_first(("done", "error"), "k1", timeout_s=60)
    finally:
        await peer.close()
    assert end["type"] == "done", end
    # What the listener heard around the kill: the longest run of silent frames after it.
    heard = [frame.received_at for frame in peer.received.audible(since=killed_at - 1.0)]
    gap_s = max(later - earlier for earlier, later in zip(heard, heard[1:], strict=False))
    print(f"failover: longest silence after the kill {gap_s * 1000:.0f} ms")
    assert gap_s < 1.0
    # Piper is deterministic: the other replica resumed inside the sentence, sample-exactly.
    assert abs(end["audio_ms"] - whole_ms) <= 40


def test_the_gateway_maps_no_model_libraries(ray_gateway: RunningServer) -> None:
    maps = Path(f"/proc/{ray_gateway.process.pid}/maps").read_text()
    assert "libray" in maps or "_raylet" in maps  # the check sees the libraries this process does load
    for library in ("onnxruntime", "libtorch", "espeakbridge", "_webrtcvad"):
        assert library not in maps


@pytest.mark.asyncio
async def test_removing_a_node_mid_utterance(ray_cluster: Cluster, ray_gateway: RunningServer) -> None:
    replicas = (await until_idle()).keys()
    peer = SpeechClient(ray_gateway.url)
    try:
        await peer.connect()
        peer.send({"type": "speak", "text": LONG_TEXT, "id": "n1"})
        await peer.wait_event("audio_start", "n1")
        serving = await replica_serving()
        node_id = (await reading()).replicas[serving]["node"]
        node = next(node for node in ray_cluster.worker_nodes if node.node_id == node_id)
        await asyncio.to_thread(ray_cluster.remove_node, node)
        _, end = await peer.wait_first(("done", "error"), "n1", timeout_s=60)
    finally:
        await peer.close()
    assert end["type"] == "done", end
    ray_cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    async with asyncio.timeout(60):  # Serve replaces the lost replica on the new node
        while True:
            if len((await reading()).replicas) >= len(replicas):
                break
            await asyncio.sleep(0.2)


@pytest.mark.asyncio
async def test_a_batch_flood_is_refused_past_its_cap_and_never_delays_real_time(ray_gateway: RunningServer) -> None:
    late_before = sum(report["stats"]["late_chunks"] for report in (await until_idle()).values())
    text = "A batch request for a file, long enough to keep the engine busy for a while."
    peer = SpeechClient(ray_gateway.url)
    async with aiohttp.ClientSession(ray_gateway.url) as http:

        async def batch() -> tuple[int, str]:
            async with http.post("/tts", json={"text": text}) as resp:
                body = await resp.read()
                return resp.status, body.decode(errors="replace") if resp.status != 200 else ""

        try:
            await peer.connect()
            peer.send({"type": "speak", "text": LONG_TEXT[:300], "id": "rt"})
            await peer.wait_event("audio_start", "rt")
            # Two replicas admit 16 batch requests each (MAX_BATCH_QUEUE); 48 at once are more than that.
            results = await asyncio.gather(*(batch() for _ in range(48)))
            _, end = await peer.wait_first(("done", "error"), "rt", timeout_s=60)
        finally:
            await peer.close()
    statuses = [status for status, _ in results]
    assert set(statuses) == {200, 503}, statuses
    assert all('"busy"' in body for status, body in results if status == 503)
    assert end["type"] == "done", end
    late_after = sum(report["stats"]["late_chunks"] for report in (await until_idle()).values())
    assert late_after == late_before


def running_replicas() -> int:
    """Replicas Serve's controller runs now (it tells every deployment handle, so every router, as they change)."""
    deployment = serve.status().applications[ENGINE_APP].deployments[ENGINE_DEPLOYMENT]
    return sum(count for state, count in deployment.replica_states.items() if state == "RUNNING")


@pytest.mark.asyncio
async def test_new_real_time_utterances_go_to_the_idle_replica(ray_gateway: RunningServer) -> None:
    """Calls go through `SlackRouter` end to end: two new utterances both go to the replica just started, none to
    the one running three. (Serve's default router would pick the same here; where the slack rules differ from
    it is checked on plain figures in tests/unit/test_ray_policy.py, the wiring in tests/unit/test_ray_app.py.)"""
    before = set((await until_idle()).keys())
    loaded, replaced = sorted(before)
    # While Serve replaces one replica, the other takes every call.
    await kill_replica(replaced)
    peers = [SpeechClient(ray_gateway.url) for _ in range(5)]
    try:
        for n, peer in enumerate(peers[:3]):
            await peer.connect()
            peer.send({"type": "speak", "text": LONG_TEXT, "id": f"busy{n}"})
            await peer.wait_event("audio_start", f"busy{n}", timeout_s=30)
        async with asyncio.timeout(90):
            while True:
                fresh = set((await reading()).replicas) - before
                if fresh and await asyncio.to_thread(running_replicas) == 2:
                    break
                await asyncio.sleep(0.2)
        idle = fresh.pop()
        for n, peer in enumerate(peers[3:]):
            await peer.connect()
            peer.send({"type": "speak", "text": LONG_TEXT, "id": f"new{n}"})
            await peer.wait_event("audio_start", f"new{n}", timeout_s=30)
        async with asyncio.timeout(10):  # the replicas' next posts show where the calls went
            while True:
                reports = {name: post["report"] for name, post in (await reading()).replicas.items()}
                if reports[idle]["realtime_calls"] == 2 and reports[loaded]["realtime_calls"] == 3:
                    break
                await asyncio.sleep(0.1)
    finally:
        for peer in peers:
            await peer.close()


@pytest.mark.asyncio
async def test_with_no_replica_left_the_utterance_ends_cleanly_and_the_next_one_is_served(
    ray_gateway: RunningServer,
) -> None:
    replicas = list((await until_idle()).keys())
    peer = SpeechClient(ray_gateway.url)
    try:
        await peer.connect()
        peer.send({"type": "speak", "text": LONG_TEXT, "id": "u1"})
        await peer.wait_event("audio_start", "u1")
        serving = await replica_serving()
        for replica in [serving, *(other for other in replicas if other != serving)]:
            await kill_replica(replica)
        _, end = await peer.wait_first(("done", "error"), "u1", timeout_s=30)
        # Serve starts replacements at once: one that is up within FAILOVER_START_TIMEOUT_S takes up the rest
        # (the whole utterance is heard); otherwise the utterance ends cleanly. Never a hang, never another
        # error (tests/unit/test_ray_stream.py holds each outcome apart).
        if end["type"] == "done":
            assert end["audio_ms"] > 20_000, end
        else:
            assert end["code"] == "engine_unavailable", end
        async with asyncio.timeout(90):  # Serve starts new replicas; the gateway sees them on the board
            while True:
                fresh = set((await reading()).replicas) - set(replicas)
                if fresh:
                    break
                await asyncio.sleep(0.2)
        await asyncio.to_thread(wait_ready, ray_gateway)
        peer.send({"type": "speak", "text": "A new replica speaks.", "id": "u2"})
        _, done = await peer.wait_event("done", "u2", timeout_s=30)
        assert done["audio_ms"] > 500
    finally:
        await peer.close()


def test_without_ray_address_the_gateway_runs_its_own_cluster_on_loopback() -> None:
    server = start_server({"MODE": "ray", "ENGINE_REPLICAS": "1", "ENGINE_WORKERS": "1"})
    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert any("raylet" in child.name() for child in children)
        body = json.dumps({"text": "My own cluster speaks."}).encode()
        request = urllib.request.Request(server.url + "/tts", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 200 and len(resp.read()) > 22050
    finally:
        server.stop()
    assert server.process.returncode == 0
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, alive
