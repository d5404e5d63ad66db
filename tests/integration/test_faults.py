"""Faults a real deployment sees, each cleaned up within seconds, as `/metrics` shows.

A client that vanishes mid-utterance (its socket closed; its peer connection
closed without a hang-up), a peer that never completes ICE, a WebSocket
reader that stops reading (its request is parked: bounded memory, no model
time), a synthesis step that fails mid-utterance (its buffered audio is
dropped with it). Each test ends when the server shows no peers, no sessions
and no engine work again.

The failing step is real, not mocked: a server runs a copy of the bundled voice
whose config maps one phoneme (the "zh" of "measure") to an id its model does
not have, as a broken voice file would; onnxruntime refuses the step that meets
it, after the utterance's first sentence has been heard.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clients.metrics import internal_errors, sample, scrape
from clients.rtc import SpeechClient, bare_offer
from clients.websocket import RawWebSocket, raw_websocket, text_frame
from media_server.engine.backends.piper.backend import default_model_path
from tests.probes import CLEAN, wait_for_metrics
from tests.server import RunningServer, start_server

CONNECT_TIMEOUT_S = 2.0
LONG_TEXT = "This sentence is one of many in a long answer that nobody will hear to the end. " * 40
BROKEN_PHONEME = "ʒ"
# One sentence whose only "measure" comes after about ten seconds of audio, made (and buffered) before it fails.
BUFFERED_BEFORE_FAILURE = "One more clause keeps this sentence going, " * 6 + "and then we measure the treasure."


@pytest.fixture(scope="module")
def broken_voice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The bundled voice with one phoneme mapped past the end of its model's phoneme table."""
    model = default_model_path()
    folder = tmp_path_factory.mktemp("broken-voice")
    (folder / model.name).symlink_to(model)
    config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
    config["phoneme_id_map"][BROKEN_PHONEME] = [config["num_symbols"] + 1000]
    Path(folder / f"{model.name}.json").write_text(json.dumps(config), encoding="utf-8")
    server = start_server({"PIPER_MODEL": str(folder / model.name)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def faulty() -> Iterator[RunningServer]:
    """Default settings: a peer that goes away is noticed by its connection state, long before a timeout."""
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def impatient() -> Iterator[RunningServer]:
    server = start_server({"RTC_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S)})
    yield server
    server.stop()


async def speak_raw(ws: RawWebSocket, text: str) -> None:
    await ws.send(text_frame(json.dumps({"type": "speak", "text": text})))


@pytest.mark.asyncio
async def test_websocket_client_vanishing_mid_utterance(faulty: RunningServer) -> None:
    async with raw_websocket(faulty.url + "/ws/tts") as ws:
        await speak_raw(ws, LONG_TEXT)
        await ws.receive(4096)  # the utterance is under way
        await wait_for_metrics(faulty.url, {sample("media_server_sessions", route="ws"): 1.0})
    assert internal_errors(await wait_for_metrics(faulty.url, CLEAN, timeout_s=5)) == 0


@pytest.mark.asyncio
async def test_webrtc_peer_vanishing_mid_utterance_without_hanging_up(faulty: RunningServer) -> None:
    client = SpeechClient(faulty.url)
    await client.connect()
    client.send({"type": "speak", "text": LONG_TEXT, "id": "cut"})
    await client.wait_event("audio_start", "cut")
    await wait_for_metrics(faulty.url, {sample("media_server_sessions", route="webrtc"): 1.0})
    await client.close()  # ICE and DTLS go away; no DELETE /rtc/sessions/{id}
    await wait_for_metrics(faulty.url, CLEAN, timeout_s=5)


@pytest.mark.asyncio
async def test_a_peer_that_never_connects_is_reaped(impatient: RunningServer) -> None:
    pc, sdp = await bare_offer()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(impatient.url + "/rtc/offer", json={"sdp": sdp, "type": "offer"}) as resp:
                assert resp.status == 200  # and the answer is never applied: ICE never completes
        assert (await scrape(impatient.url)).samples[sample("media_server_peers")] == 1
        await wait_for_metrics(impatient.url, CLEAN, timeout_s=CONNECT_TIMEOUT_S + 3)
    finally:
        await pc.close()


@pytest.mark.asyncio
async def test_a_websocket_reader_that_stops_reading_is_parked(faulty: RunningServer) -> None:
    async with raw_websocket(faulty.url + "/ws/tts?format=pcm&sample_rate=48000", receive_buffer=4096) as ws:
        await speak_raw(ws, LONG_TEXT)
        parked = {
            sample("media_server_engine_parked_requests"): 1.0,
            sample("media_server_sessions", route="ws"): 1.0,
        }
        await wait_for_metrics(faulty.url, parked, timeout_s=30)
    assert internal_errors(await wait_for_metrics(faulty.url, CLEAN, timeout_s=5)) == 0


async def ws_events(url: str, text: str) -> list[dict[str, Any]]:
    """The events of one utterance spoken over a WebSocket, up to its `done` or `error` (its `words` left out)."""
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws/tts") as ws:
        await ws.send_json({"type": "speak", "text": text, "id": "u"})
        async with asyncio.timeout(30):
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] != "words":
                    events.append(json.loads(message.data))
                    if events[-1]["type"] in ("done", "error"):
                        break
    return events


@pytest.mark.asyncio
async def test_a_synthesis_step_failing_mid_utterance(broken_voice: RunningServer) -> None:
    url = broken_voice.url
    assert [e["type"] for e in await ws_events(url, "Warming up first.")] == ["started", "audio_start", "done"]
    failed_before = (await scrape(url)).samples[sample("media_server_engine_requests_total", outcome="failed")]
    events = await ws_events(url, "This first sentence is heard. Then we measure the treasure.")
    assert [e["type"] for e in events] == ["started", "audio_start", "error"]
    assert events[-1]["code"] == "engine_error" and events[-1]["id"] == "u"
    expected = {**CLEAN, sample("media_server_engine_requests_total", outcome="failed"): failed_before + 1}
    assert internal_errors(await wait_for_metrics(url, expected, timeout_s=5)) == 0
    assert [e["type"] for e in await ws_events(url, "Still speaking.")] == ["started", "audio_start", "done"]


@pytest.mark.asyncio
async def test_a_failed_utterance_stops_playing_at_once(broken_voice: RunningServer) -> None:
    """Audio synthesized ahead of a failing step is dropped: the next utterance does not wait behind it."""
    client = SpeechClient(broken_voice.url)
    await client.connect()
    try:
        client.send({"type": "speak", "text": BUFFERED_BEFORE_FAILURE, "id": "fails"})
        await client.wait_event("audio_start", "fails")
        _, error = await client.wait_first(("error", "done"), "fails", timeout_s=30)
        assert error["type"] == "error" and error["code"] == "engine_error"
        after = client.send({"type": "speak", "text": "Next one.", "id": "next"})
        _, started = await client.wait_event("audio_start", "next", after=after, timeout_s=30)
        # Without the drop this waits for the whole buffered clause run, over ten seconds of audio.
        assert started["ttfa_ms"] < 3000
        await client.wait_event("done", "next")
    finally:
        await client.close()
    await wait_for_metrics(broken_voice.url, CLEAN, timeout_s=5)
