"""Operations against real servers: metrics, admission budget, lazy load, idle unload, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import aiohttp
import pytest

from clients.metrics import scrape
from clients.rtc import SpeechClient
from tests.server import RunningServer, start_server, wait_ready


@pytest.mark.asyncio
async def test_metrics_count_requests_ttfa_sessions_and_no_underruns(server_url: str) -> None:
    peer = SpeechClient(server_url)
    await peer.connect()
    peer.send({"type": "speak", "text": "Counting this one for the metrics page.", "id": "m1"})
    await peer.wait_event("done", "m1")
    during = (await scrape(server_url)).samples
    await peer.close()
    assert during[("media_server_sessions", (("route", "webrtc"),))] >= 1
    assert during[("media_server_ttfa_seconds_count", (("route", "webrtc"),))] >= 1
    assert during.get(("media_server_underruns_total", (("route", "webrtc"),)), 0.0) == 0.0
    assert during[("media_server_audio_seconds_total", ())] > 1.0
    assert during[("media_server_http_requests_total", (("route", "/rtc/offer"), ("status", "200")))] >= 1


@pytest.fixture(scope="module")
def budget_server() -> Iterator[RunningServer]:
    server = start_server({"TTFA_BUDGET_MS": "1"})
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_real_time_requests_over_the_budget_are_refused_batch_ones_wait(budget_server: RunningServer) -> None:
    async with aiohttp.ClientSession(budget_server.url) as http:
        # With no step measured yet the estimate is zero: the first one is admitted.
        async with http.post("/tts/pcm", json={"text": "The first request teaches the estimate."}) as resp:
            assert resp.status == 200
            await resp.read()
        async with http.post("/tts/pcm", json={"text": "This one cannot start within a millisecond."}) as resp:
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            error = (await resp.json())["error"]
        async with http.post("/tts", json={"text": "Batch work waits instead."}) as resp:
            assert resp.status == 200
    assert error["code"] == "busy" and "budget" in error["message"]


@pytest.mark.asyncio
async def test_lazy_load_then_unload_when_idle() -> None:
    server = start_server({"PRELOAD_MODEL": "false", "IDLE_TIMEOUT": "1"}, wait=False)
    try:
        await asyncio.to_thread(wait_ready, server, "/healthz")
        async with aiohttp.ClientSession(server.url) as http:
            async with http.get("/readyz") as resp:
                assert resp.status == 503 and (await resp.json())["status"] == "idle"
            async with http.post("/tts", json={"text": "Wake up."}) as resp:
                assert resp.status == 503  # the first use starts loading
                assert (await resp.json())["error"]["code"] == "not_ready"
            await asyncio.to_thread(wait_ready, server)
            async with http.post("/tts", json={"text": "Now it speaks."}) as resp:
                assert resp.status == 200
            async with asyncio.timeout(10):
                while True:  # unloaded after a second unused
                    async with http.get("/readyz") as resp:
                        if resp.status == 503:
                            break
                    await asyncio.sleep(0.2)
            # After an idle unload requests are admitted and wait for the reload.
            async with http.post("/tts", json={"text": "Back again."}) as resp:
                assert resp.status == 200
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_sigterm_lets_the_utterance_finish_then_exits_zero() -> None:
    server = start_server({"SHUTDOWN_GRACE": "15"})
    peer = SpeechClient(server.url)
    try:
        await peer.connect()
        peer.send(
            {"type": "speak", "text": "A sentence that is still playing when the server is told to stop.", "id": "g"}
        )
        await peer.wait_event("audio_start", "g")
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        _, done = await peer.wait_event("done", "g", timeout_s=15)
        assert done["audio_ms"] > 2000
        code = await asyncio.to_thread(server.process.wait, 20)
        assert code == 0
        assert time.monotonic() - stopped_at < 15
    finally:
        await peer.close()
        server.stop()
