"""The WebSocket protocol and the Twilio-style telephony bridge, with real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.audio import decoded_samples, g711_pcm

SENTENCES = "Hello there, this is a WebSocket test. It has a second sentence. And a third one too."


class WsClient:
    """Collects a WebSocket's JSON events and binary audio with arrival times."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.audio: list[tuple[float, bytes]] = []

    async def send(self, message: dict[str, Any]) -> float:
        await self.ws.send_str(json.dumps(message))
        return time.monotonic()

    async def until(self, kind: str, key: str = "type", timeout_s: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            async for message in self.ws:
                now = time.monotonic()
                if message.type == aiohttp.WSMsgType.BINARY:
                    self.audio.append((now, message.data))
                    continue
                event: dict[str, Any] = json.loads(message.data)
                self.events.append((now, event))
                if event.get(key) == kind:
                    return event
        raise AssertionError(f"the socket closed before a {kind!r} event")


@pytest.mark.asyncio
async def test_speak_streams_pcm_between_audio_start_and_done(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        client = WsClient(ws)
        await client.send({"type": "speak", "text": SENTENCES, "id": "w1"})
        done = await client.until("done")
    kinds = [event["type"] for _, event in client.events if event["type"] != "words"]
    assert kinds == ["started", "audio_start", "done"]
    started_at = client.events[1][0]
    assert all(at >= started_at for at, _ in client.audio)
    samples = sum(len(data) for _, data in client.audio) // 2
    assert samples / 24000 * 1000 == pytest.approx(done["audio_ms"], abs=2)
    assert len(client.audio) >= 3


@pytest.mark.asyncio
async def test_append_and_flush(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        client = WsClient(ws)
        for word in "Streaming tokens arrive one by one. Then they stop".split(" "):
            await client.send({"type": "append", "text": word + " "})
        await client.until("audio_start")
        await client.send({"type": "flush"})
        done = await client.until("done")
    assert done["audio_ms"] > 1500


@pytest.mark.asyncio
async def test_cancel_mid_utterance_then_speak_again(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        client = WsClient(ws)
        await client.send({"type": "speak", "text": SENTENCES * 6, "id": "long"})
        await client.until("audio_start")
        await client.send({"type": "cancel"})
        cancelled = await client.until("cancelled")
        assert cancelled["id"] == "long"
        await client.send({"type": "speak", "text": "Short one.", "id": "next"})
        done = await client.until("done")
    assert done["id"] == "next"
    assert not [e for _, e in client.events if e["type"] == "done" and e["id"] == "long"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "bytes_per_second"),
    [
        ("format=mulaw&sample_rate=8000", 8000),
        ("format=alaw", 8000),
        ("format=alaw&sample_rate=16000", 16000),
        ("", 48000),
    ],
)
async def test_formats_switch_by_query(server_url: str, query: str, bytes_per_second: int) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{server_url}/ws/tts?{query}") as ws:
        client = WsClient(ws)
        await client.send({"type": "speak", "text": "A short sentence to encode."})
        done = await client.until("done")
    size = sum(len(data) for _, data in client.audio)
    assert size / bytes_per_second * 1000 == pytest.approx(done["audio_ms"], abs=2)


@pytest.mark.asyncio
async def test_opus_is_one_ogg_stream(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts?format=opus") as ws:
        client = WsClient(ws)
        await client.send({"type": "speak", "text": SENTENCES})
        done = await client.until("done")
    samples, _ = decoded_samples(b"".join(data for _, data in client.audio))
    assert samples / 48000 * 1000 == pytest.approx(done["audio_ms"], rel=0.05)


@pytest.mark.asyncio
async def test_bad_messages_and_queries(server_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server_url + "/ws/tts?format=flac") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"].startswith("format")
        async with http.get(server_url + "/ws/tts?format=opus&sample_rate=44100") as resp:
            assert resp.status == 400
        async with http.ws_connect(server_url + "/ws/tts") as ws:
            client = WsClient(ws)
            await ws.send_str("{nope")
            assert (await client.until("error"))["code"] == "invalid_request"
            await ws.send_bytes(b"\x00\x01")
            assert "binary" in (await client.until("error"))["message"]
            await client.send({"type": "speak", "text": "Still fine."})
            await client.until("done")


@pytest.mark.asyncio
async def test_telephony_frames_marks_and_clear(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/telephony") as ws:
        client = WsClient(ws)
        await client.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await client.send({"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1"}})
        await client.send({"event": "speak", "text": "Hello caller, thanks for holding.", "id": "t1"})
        await client.send({"event": "mark", "streamSid": "MZ1", "mark": {"name": "after-t1"}})
        echoed = await client.until("mark", key="event")
        assert echoed["mark"]["name"] == "t1"
        assert (await client.until("mark", key="event"))["mark"]["name"] == "after-t1"
        media = [e for _, e in client.events if e["event"] == "media"]
        assert media and all(e["streamSid"] == "MZ1" for e in media)
        assert {len(base64.b64decode(e["media"]["payload"])) for e in media} == {160}
        done = next(e for _, e in client.events if e["event"] == "done")
        assert len(media) * 20 == pytest.approx(done["audio_ms"], abs=20)

        await client.send({"event": "speak", "text": "This long message will be interrupted. " * 5, "id": "t2"})
        await client.until("audio_start", key="event")
        await client.send({"event": "clear", "streamSid": "MZ1"})
        await client.until("clear", key="event")
        cleared = len(client.events)
        await client.send({"event": "speak", "text": "Back.", "id": "t3"})
        await client.until("done", key="event")
    # Frames sent before the clear was handled arrive before its echo; none of t2's may follow it.
    after_clear = [e["event"] for _, e in client.events[cleared:]]
    assert after_clear.index("audio_start") < after_clear.index("media")
    ends = [e for _, e in client.events if e["event"] in ("done", "cancelled")]
    assert [(e["event"], e["id"]) for e in ends] == [("done", "t1"), ("cancelled", "t2"), ("done", "t3")]


@pytest.mark.asyncio
async def test_alaw_is_g711_a_law_next_to_mulaw(server_url: str) -> None:
    """The same speech as mu-law and as a-law: each decodes to the same loudness by its own law only."""
    encoded = {}
    async with aiohttp.ClientSession() as http:
        for law in ("mulaw", "alaw"):
            async with http.ws_connect(f"{server_url}/ws/tts?format={law}") as ws:
                client = WsClient(ws)
                await client.send({"type": "speak", "text": "The same words, twice over."})
                await client.until("done")
            encoded[law] = b"".join(data for _, data in client.audio)

    def rms(samples: np.ndarray) -> float:
        return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))

    mulaw, alaw = rms(g711_pcm(encoded["mulaw"], "mulaw")), rms(g711_pcm(encoded["alaw"], "alaw"))
    assert len(encoded["alaw"]) == len(encoded["mulaw"]) and alaw == pytest.approx(mulaw, rel=0.05)
    assert rms(g711_pcm(encoded["alaw"], "mulaw")) > 2 * alaw
