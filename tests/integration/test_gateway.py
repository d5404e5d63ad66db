"""Gateway mode against real servers: the model in a supervised worker process, the gateway light.

Worker processes are found as the gateway's children (psutil); one is killed
with SIGKILL to check that in-flight requests fail cleanly and the next one
is served by its replacement. Which native libraries each process has loaded
is read from /proc/<pid>/maps: onnxruntime (piper) and libtorch (the tiny
random-weight Qwen3-TTS checkpoint) only ever in the worker.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import psutil
import pytest

from clients.metrics import sample, scrape
from clients.rtc import SpeechClient
from media_server.audio.wav import wav_header
from media_server.errors import (
    Busy,
    EngineError,
    InvalidRequest,
    InvalidSsml,
    MediaServerError,
    NotReady,
    TextTooLong,
    UnknownVoice,
    UnsupportedLanguage,
    WorkerDied,
)
from media_server.gateway.wire import error_from_wire, error_to_wire
from tests.server import RunningServer, start_server, wait_ready

LONG_TEXT = " ".join(f"This is sentence number {n} of a long text that keeps the worker busy." for n in range(1, 16))


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningServer]:
    server = start_server({"MODE": "gateway"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idle_gateway() -> Iterator[RunningServer]:
    server = start_server({"MODE": "gateway", "IDLE_TIMEOUT": "1", "TTFA_BUDGET_MS": "1"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def qwen_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    pytest.importorskip("qwen_tts")
    from tests.qwen_checkpoint import tiny_server_env

    server = start_server({"MODE": "gateway", **tiny_server_env(tmp_path_factory)})
    yield server
    server.stop()


def worker_pid(server: RunningServer) -> int:
    pids = [child.pid for child in psutil.Process(server.process.pid).children()]
    assert len(pids) == 1, pids
    return pids[0]


def exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.asyncio
async def test_webrtc_speech_through_the_gateway(gateway: RunningServer) -> None:
    peer = SpeechClient(gateway.url)
    try:
        await peer.connect()
        text = "Hello from the worker, through the gateway."
        sent_at = peer.send({"type": "speak", "text": text, "id": "w1"})
        _, done = await peer.wait_event("done", "w1")
        assert done["audio_ms"] > 1000
        said = [w["word"] for _, ev in peer.received.events if ev["type"] == "words" for w in ev["words"]]
        assert said == text.split()  # word timings cross the worker's wire
        assert len(peer.received.audible(since=sent_at)) * 20 > 1000
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_openai_speech_and_local_checks_through_the_gateway(gateway: RunningServer) -> None:
    body = {"model": "tts-1", "input": "The gateway streams what the worker says.", "voice": "alloy"}
    async with aiohttp.ClientSession(gateway.url) as http:
        async with http.post("/v1/audio/speech", json={**body, "response_format": "wav"}) as resp:
            assert resp.status == 200
            with wave.open(io.BytesIO(await resp.read())) as wav:
                assert wav.getnframes() / wav.getframerate() > 1.0
        async with http.post("/v1/audio/speech", json={**body, "voice": "nobody"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "unknown_voice"


@pytest.mark.asyncio
async def test_ssml_parts_and_phonemes_through_the_gateway(gateway: RunningServer) -> None:
    async def frames(http: aiohttp.ClientSession, **body: object) -> int:
        async with http.post("/tts", json=body) as resp:
            assert resp.status == 200, await resp.text()
            with wave.open(io.BytesIO(await resp.read())) as wav:
                count: int = wav.getnframes()
                return count

    tomato = '<phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme>'
    async with aiohttp.ClientSession(gateway.url) as http:
        async with http.get("/v1/voices") as resp:
            assert [voice["capabilities"] for voice in (await resp.json())["voices"]] == [["ipa_phonemes"]]
        alone = await frames(http, text=f"<speak>A {tomato}.</speak>", ssml=True)
        both = await frames(http, text=f'<speak>A {tomato}.<break time="500ms"/>A {tomato}.</speak>', ssml=True)
        assert both == 2 * alone + 22050 // 2
        assert alone != await frames(http, text="A tomato.")


@pytest.mark.asyncio
async def test_killed_worker_fails_the_utterance_cleanly_and_is_replaced(gateway: RunningServer) -> None:
    restarts = (await scrape(gateway.url)).samples[sample("media_server_engine_worker_restarts_total")]
    killed = worker_pid(gateway)
    peer = SpeechClient(gateway.url)
    try:
        await peer.connect()
        peer.send({"type": "speak", "text": LONG_TEXT, "id": "k1"})
        await peer.wait_event("audio_start", "k1")
        os.kill(killed, signal.SIGKILL)
        _, error = await peer.wait_first(("error", "done"), "k1", timeout_s=10)
        assert error["type"] == "error" and error["code"] == "worker_died"
        peer.send({"type": "speak", "text": "The new worker speaks.", "id": "k2"})
        _, done = await peer.wait_event("done", "k2", timeout_s=30)
        assert done["audio_ms"] > 500
    finally:
        await peer.close()
    assert worker_pid(gateway) != killed
    assert (await scrape(gateway.url)).samples[sample("media_server_engine_worker_restarts_total")] == restarts + 1


@pytest.mark.asyncio
async def test_a_streamed_body_the_worker_dies_in_ends_so_the_client_can_tell(gateway: RunningServer) -> None:
    body = {"model": "tts-1", "input": LONG_TEXT, "voice": "alloy", "response_format": "pcm"}
    async with aiohttp.ClientSession(gateway.url) as http:
        async with http.post("/v1/audio/speech", json=body) as resp:
            assert resp.status == 200
            assert await resp.content.readany()
            os.kill(worker_pid(gateway), signal.SIGKILL)
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        wait_ready(gateway)


@pytest.mark.asyncio
async def test_barge_in_aborts_the_request_in_the_worker(gateway: RunningServer) -> None:
    peer = SpeechClient(gateway.url)
    try:
        await peer.connect()
        peer.send({"type": "speak", "text": LONG_TEXT, "id": "c1"})
        await peer.wait_event("audio_start", "c1")
        peer.send({"type": "cancel"})
        await peer.wait_event("cancelled", "c1")
    finally:
        await peer.close()
    async with asyncio.timeout(10):  # the worker's counters reach the gateway with its next stats poll
        while True:
            metrics = (await scrape(gateway.url)).samples
            if metrics[sample("media_server_engine_requests_total", outcome="cancelled")] >= 1:
                break
            await asyncio.sleep(0.2)
    assert metrics[sample("media_server_engine_queued_requests")] == 0
    # the worker's observer events
    assert metrics[sample("media_server_queue_wait_seconds_count", priority="realtime")] >= 1


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_gateway_maps_no_model_libraries(gateway: RunningServer) -> None:
    wait_ready(gateway)
    body = json.dumps({"text": "One more request first."}).encode()
    request = urllib.request.Request(gateway.url + "/tts", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
    gateway_maps, worker_maps = mapped_files(gateway.process.pid), mapped_files(worker_pid(gateway))
    for library in ("onnxruntime", "espeakbridge", "_webrtcvad"):
        assert library in worker_maps  # the check sees what it looks for
    for library in ("onnxruntime", "libtorch", "espeakbridge", "_webrtcvad"):
        assert library not in gateway_maps


def reference_wav(seconds: float = 1.5, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    voiced = np.zeros_like(t)
    for harmonic in range(1, 6):
        voiced += np.sin(2 * np.pi * 140 * harmonic * t) / harmonic
    pcm = (voiced * 3000).astype(np.int16)
    return wav_header(rate, pcm.nbytes) + pcm.tobytes()


def clone_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("audio", reference_wav(), filename="reference.wav", content_type="audio/wav")
    form.add_field("transcript", "Hello there.")
    return form


@pytest.mark.asyncio
async def test_a_refused_clone_is_the_worker_error(gateway: RunningServer) -> None:
    async with aiohttp.ClientSession(gateway.url) as http, http.post("/v1/voices", data=clone_form()) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_request" and "cannot clone" in error["message"]


@pytest.mark.asyncio
async def test_cloning_through_the_gateway_with_torch_only_in_the_worker(qwen_gateway: RunningServer) -> None:
    async with aiohttp.ClientSession(qwen_gateway.url) as http:
        async with http.post("/v1/voices", data=clone_form()) as resp:
            assert resp.status == 201, await resp.text()
            voice = (await resp.json())["id"]
        async with http.get("/v1/voices") as resp:
            assert voice in {v["id"] for v in (await resp.json())["voices"]}
        async with http.post("/tts", json={"text": "Speaking with a cloned voice.", "voice": voice}) as resp:
            assert resp.status == 200 and len(await resp.read()) > 1000
        async with http.delete(f"/v1/voices/{voice}") as resp:
            assert resp.status == 200
        async with http.post("/tts", json={"text": "It is gone.", "voice": voice}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "unknown_voice"
    gateway_maps = await asyncio.to_thread(mapped_files, qwen_gateway.process.pid)
    worker_maps = await asyncio.to_thread(mapped_files, worker_pid(qwen_gateway))
    assert "libtorch" in worker_maps and "libtorch" not in gateway_maps


@pytest.mark.asyncio
async def test_idle_worker_exits_and_comes_back_on_the_next_request(idle_gateway: RunningServer) -> None:
    async with aiohttp.ClientSession(idle_gateway.url) as http:
        async with http.post("/tts", json={"text": "Speak, then rest."}) as resp:
            assert resp.status == 200
        first = worker_pid(idle_gateway)
        await asyncio.to_thread(psutil.Process(first).wait, 10)
        async with http.get("/readyz") as resp:
            assert resp.status == 503 and (await resp.json())["status"] == "idle"
        started = time.monotonic()
        async with http.post("/tts", json={"text": "Back again."}) as resp:
            assert resp.status == 200
        assert time.monotonic() - started < 15
        assert worker_pid(idle_gateway) != first
    assert (await scrape(idle_gateway.url)).samples[sample("media_server_engine_worker_restarts_total")] == 0


@pytest.mark.asyncio
async def test_worker_refusal_reaches_the_client_as_the_same_error(idle_gateway: RunningServer) -> None:
    async with aiohttp.ClientSession(idle_gateway.url) as http:
        for _ in range(3):  # the first request after a (re)start teaches the estimate and is admitted
            async with http.post("/tts/pcm", json={"text": "Refused within a millisecond."}) as resp:
                if resp.status == 503:
                    error = (await resp.json())["error"]
                    assert int(resp.headers["Retry-After"]) >= 1
                    break
                assert resp.status == 200
                await resp.read()
        else:
            pytest.fail("no request was refused")
    assert error["code"] == "busy" and "budget" in error["message"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_the_worker_ends_with_its_gateway(stop: signal.Signals, tmp_path: Path) -> None:
    server = start_server({"MODE": "gateway", "TMPDIR": str(tmp_path)})  # where its socket directory goes
    try:
        worker = worker_pid(server)
        server.process.send_signal(stop)
        code = server.process.wait(timeout=20)
        assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
        if stop == signal.SIGTERM:
            assert not list(tmp_path.glob("media-server-gateway-*"))  # its socket directory is removed
        deadline = time.monotonic() + 10
        while not exited(worker):  # after SIGKILL the worker sees its stdin close and exits by itself
            assert time.monotonic() < deadline, "the worker outlived its gateway"
            time.sleep(0.1)
    finally:
        server.stop()


class Unlisted(MediaServerError):
    code = "unlisted"
    status = 418


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("speed: too fast"),
        UnknownVoice("voice: unknown"),
        TextTooLong("text: too long"),
        UnsupportedLanguage("language: none speaks it"),
        InvalidSsml("ssml: line 1, column 2: mismatched tag"),
        Busy("over the budget", retry_after_s=3.0, estimate_ms=2500.0),
        NotReady("loading"),
        EngineError("synthesis failed"),
        WorkerDied("gone"),
        Unlisted("a class the table does not know keeps its code and status"),
    ],
)
def test_errors_cross_the_wire_as_themselves(error: MediaServerError) -> None:
    back = error_from_wire(json.loads(json.dumps(error_to_wire(error))))
    assert type(back) is (MediaServerError if isinstance(error, Unlisted) else type(error))
    assert (back.code, back.status, back.message, back.retry_after_s) == (
        error.code,
        error.status,
        error.message,
        error.retry_after_s,
    )
    if isinstance(error, Busy):
        assert isinstance(back, Busy) and back.estimate_ms == error.estimate_ms


@pytest.fixture(scope="module")
def impatient_gateway() -> Iterator[RunningServer]:
    server = start_server({"MODE": "gateway", "WORKER_STALL_TIMEOUT": "2"})
    yield server
    server.stop()


async def ready_status(server: RunningServer) -> int:
    async with aiohttp.ClientSession(server.url) as http, http.get("/readyz") as resp:
        return resp.status


@pytest.mark.asyncio
async def test_a_stuck_worker_is_not_ready_then_killed_and_replaced(impatient_gateway: RunningServer) -> None:
    stuck = worker_pid(impatient_gateway)
    async with aiohttp.ClientSession() as http, http.ws_connect(impatient_gateway.url + "/ws/tts") as ws:
        await ws.send_json({"type": "speak", "text": LONG_TEXT, "id": "stuck"})
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                break
        os.kill(stuck, signal.SIGSTOP)
        async with asyncio.timeout(10):
            while await ready_status(impatient_gateway) == 200:  # noqa: ASYNC110  (readiness is polled, as a balancer does)
                await asyncio.sleep(0.2)
        async with asyncio.timeout(15):
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] == "error":
                    assert json.loads(message.data)["code"] == "worker_died"
                    break
    async with asyncio.timeout(30):
        while await ready_status(impatient_gateway) != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    assert worker_pid(impatient_gateway) != stuck
    assert exited(stuck)
