"""Cartesia's protocol on `/tts/websocket` and `/tts/bytes` with a plain client: contexts side by side on one
connection, continuations, flush, cancel, timestamps, formats, pronunciation dictionaries and errors; plus
`/dev/captioned_speech` and `/v1/audio/voices`."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from typing import Any

import aiohttp
import pytest

PCM = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}


def generation(context_id: str, transcript: str, more: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model_id": "sonic-2",
        "context_id": context_id,
        "transcript": transcript,
        "voice": {"mode": "id", "id": "en_US-joe-medium"},
        "output_format": PCM,
        "continue": more,
        "add_timestamps": True,
        **extra,
    }


async def messages_until(ws: aiohttp.ClientWebSocketResponse, done: set[str]) -> list[dict[str, Any]]:
    """Every message until each context in `done` has had its `done` (or an error)."""
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while done:
            message = json.loads((await ws.receive()).data)
            received.append(message)
            if message["type"] in ("done", "error"):
                done.discard(message.get("context_id", ""))
    return received


@pytest.mark.asyncio
async def test_two_contexts_on_one_connection_continued_and_flushed(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/tts/websocket") as ws:
        await ws.send_json(generation("a", "The first context ", True))
        await ws.send_json(generation("b", "Meanwhile, a second one speaks.", False))
        await ws.send_json(generation("a", "goes on, ", True, flush=True))
        await ws.send_json(generation("a", "and then it ends.", False))
        received = await messages_until(ws, {"a", "b"})
    by_context: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in received:
        by_context[message["context_id"]].append(message)
    for context, text in (
        ("a", "The first context goes on, and then it ends."),
        ("b", "Meanwhile, a second one speaks."),
    ):
        kinds = [m["type"] for m in by_context[context]]
        assert kinds[-1] == "done" and "error" not in kinds
        audio = b"".join(base64.b64decode(m["data"]) for m in by_context[context] if m["type"] == "chunk")
        assert len(audio) / 2 / 16000 > 1.5
        stamps = [m["word_timestamps"] for m in by_context[context] if m["type"] == "timestamps"]
        words = [word for stamp in stamps for word in stamp["words"]]
        starts = [start for stamp in stamps for start in stamp["start"]]
        assert words == text.split()
        assert starts == sorted(starts) and starts[-1] < len(audio) / 2 / 16000
    flushes = [m for m in by_context["a"] if m["type"] == "flush_done"]
    assert [m["flush_id"] for m in flushes] == [1]


@pytest.mark.asyncio
async def test_cancel_stops_a_context_and_leaves_the_others(server_url: str) -> None:
    long_text = "This context talks for a long while, sentence after sentence. " * 8
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/tts/websocket") as ws:
        await ws.send_json(generation("long", long_text, False))
        async with asyncio.timeout(20):
            while json.loads((await ws.receive()).data)["type"] != "chunk":
                pass
        await ws.send_json({"context_id": "long", "cancel": True})
        await ws.send_json(generation("next", "Still here.", False))
        received = await messages_until(ws, {"next"})
    after_cancel = [m for m in received if m["context_id"] == "long"]
    assert all(m["type"] in ("chunk", "timestamps") for m in after_cancel)
    assert len([m for m in after_cancel if m["type"] == "chunk"]) <= 8  # what the output had queued, at most
    assert received[-1] == {**received[-1], "type": "done", "context_id": "next"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"output_format": {**PCM, "encoding": "mp3"}}, "output_format.encoding", 400),
        ({"output_format": {**PCM, "sample_rate": 100}}, "output_format.sample_rate", 400),
        ({"voice": {"mode": "embedding", "embedding": [0.1]}}, "voice.mode", 400),
        ({"voice": {"mode": "id", "id": "nobody"}}, "voice", 400),
        ({"generation_config": {"speed": 9}}, "generation_config.speed", 400),
        ({"pronunciation_dict_id": "pd_nowhere"}, "pronunciation_dict_id: no dictionary 'pd_nowhere'", 404),
        ({"pronunciation_dict_id": 7}, "pronunciation_dict_id: must be a string", 400),
    ],
)
async def test_bad_requests_are_error_messages_naming_the_field(
    server_url: str, change: dict[str, Any], field: str, status: int
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/tts/websocket") as ws:
        await ws.send_json({**generation("x", "Hello.", False), **change})
        error = json.loads((await ws.receive(timeout=20)).data)
    assert error["type"] == "error" and error["context_id"] == "x" and error["status_code"] == status
    assert error["error"].startswith(field)


@pytest.mark.asyncio
@pytest.mark.parametrize(("encoding", "bytes_per_sample"), [("pcm_s16le", 2), ("pcm_mulaw", 1), ("pcm_alaw", 1)])
async def test_tts_bytes_in_each_encoding(server_url: str, encoding: str, bytes_per_sample: int) -> None:
    body = {"transcript": "One shot, in bytes.", "output_format": {**PCM, "encoding": encoding, "sample_rate": 8000}}
    async with aiohttp.ClientSession() as http, http.post(server_url + "/tts/bytes", json=body) as resp:
        assert resp.status == 200
        audio = await resp.read()
    assert 1.0 < len(audio) / bytes_per_sample / 8000 < 3.0


@pytest.mark.asyncio
async def test_captioned_speech_streams_ndjson_with_word_timestamps(server_url: str) -> None:
    text = "Captions, with $3.50 in them."
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm"}
    async with aiohttp.ClientSession() as http:
        async with http.post(server_url + "/dev/captioned_speech", json=body) as resp:
            assert resp.status == 200 and resp.content_type == "application/x-ndjson"
            lines = [json.loads(line) async for line in resp.content if line.strip()]
        async with http.post(server_url + "/dev/captioned_speech", json={**body, "stream": False}) as resp:
            whole = await resp.json()
        async with http.get(server_url + "/v1/audio/voices") as resp:
            assert "en_US-joe-medium" in (await resp.json())["voices"]
    stamps = [stamp for line in lines for stamp in line["timestamps"]]
    assert [stamp["word"] for stamp in stamps] == text.split() == [s["word"] for s in whole["timestamps"]]
    audio = b"".join(base64.b64decode(line["audio"]) for line in lines)
    assert audio == base64.b64decode(whole["audio"])
    assert stamps[-1]["end_time"] <= len(audio) / 2 / 24000 + 0.02


@pytest.mark.asyncio
async def test_pronunciation_dict_id_names_one_of_our_dictionaries(server_url: str) -> None:
    rules = {"name": "cartesia", "rules": [{"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(server_url + "/v1/pronunciation-dictionaries/add-from-rules", json=rules) as resp:
            assert resp.status == 200
            dictionary_id = (await resp.json())["id"]

        async def spoken(transcript: str, **extra: Any) -> bytes:
            body = {"transcript": transcript, "output_format": PCM, **extra}
            async with http.post(server_url + "/tts/bytes", json=body) as resp:
                assert resp.status == 200
                return await resp.read()

        aliased = await spoken("We run Nginx.", pronunciation_dict_id=dictionary_id)
        assert aliased == await spoken("We run engine x.")
        assert aliased != await spoken("We run Nginx.")
        async with http.ws_connect(server_url + "/tts/websocket") as ws:
            await ws.send_json(generation("d", "We run Nginx.", False, pronunciation_dict_id=dictionary_id))
            received = await messages_until(ws, {"d"})
    audio = b"".join(base64.b64decode(m["data"]) for m in received if m["type"] == "chunk")
    assert audio == aliased
    words = [word for m in received if m["type"] == "timestamps" for word in m["word_timestamps"]["words"]]
    assert words == ["We", "run", "Nginx."]  # timed as written
