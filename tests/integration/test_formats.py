"""OpenAI SDK against every response format, and first audio before synthesis ends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import aiohttp
import openai
import pytest

from tests.audio import decoded_duration_s

MULTI_SENTENCE = " ".join(
    [
        "The first sentence arrives quickly.",
        "The second sentence is longer and takes the engine a while to make.",
        "A third one follows, with several clauses, commas, and more words to say.",
        "And a fourth, so that the whole text takes well over a second to synthesize.",
        "Finally, a fifth sentence closes the paragraph.",
    ]
)
EXPECTED_S = (8.0, 20.0)


@pytest.fixture
def client(server_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server_url + "/v1", api_key="unused") as sdk:
        yield sdk


@pytest.mark.parametrize("response_format", ["wav", "opus", "mp3", "flac", "aac", "pcm"])
def test_every_format_decodes_to_the_right_length(client: openai.OpenAI, response_format: str) -> None:
    speech = client.audio.speech.create(
        model="tts-1",
        voice="nova",
        input=MULTI_SENTENCE,
        response_format=response_format,  # type: ignore[arg-type]
    )
    if response_format == "pcm":
        seconds = len(speech.content) / 2 / 24000
    else:
        seconds = decoded_duration_s(speech.content, "adts" if response_format == "aac" else None)
    assert EXPECTED_S[0] < seconds < EXPECTED_S[1]


@pytest.mark.parametrize("response_format", ["pcm", "opus"])
def test_streaming_response_starts_before_synthesis_ends(client: openai.OpenAI, response_format: str) -> None:
    arrivals: list[float] = []
    pieces: list[bytes] = []
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="alloy",
        input=f"Streaming {response_format}. {MULTI_SENTENCE}",  # not cached: made as it streams
        response_format=response_format,  # type: ignore[arg-type]
    ) as response:
        for piece in response.iter_bytes():
            arrivals.append(time.monotonic())
            pieces.append(piece)
    # Each engine chunk leaves as it is made: the first long before the last.
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[0] > 0.3
    if response_format == "opus":
        assert EXPECTED_S[0] < decoded_duration_s(b"".join(pieces)) < EXPECTED_S[1]


@pytest.mark.asyncio
async def test_openai_sse_stream_format(server_url: str) -> None:
    body = {"model": "tts-1", "input": "Hello there. Goodbye now.", "voice": "alloy", "response_format": "pcm"}
    async with aiohttp.ClientSession(server_url) as http:
        async with http.post("/v1/audio/speech", json={**body, "stream_format": "sse"}) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            events = [json.loads(line[6:]) async for line in resp.content if line.startswith(b"data: ")]
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
    assert events[-1]["type"] == "speech.audio.done"
    assert "usage" in events[-1]


@pytest.mark.asyncio
async def test_tts_stream_sends_the_first_event_before_synthesis_ends(server_url: str) -> None:
    async with (
        aiohttp.ClientSession(server_url) as http,
        http.post("/tts/stream", json={"text": f"Server sent events. {MULTI_SENTENCE}"}) as resp,
    ):
        assert resp.status == 200
        lines = [line.decode().strip() async for line in resp.content]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert names[-1] == "done" and set(names[:-1]) == {"audio"}
    done = data[-1]
    # Server-side stamps: the first audio event left long before the last chunk was made.
    assert done["ttfa_ms"] < done["total_ms"] / 3
    assert all(event["sample_rate"] == 22050 for event in data[:-1])


@pytest.mark.asyncio
async def test_tts_pcm_streams_chunks_with_its_rate(server_url: str) -> None:
    async with aiohttp.ClientSession(server_url) as http:
        async with http.post("/tts/pcm", json={"text": f"Raw PCM. {MULTI_SENTENCE}", "sample_rate": 16000}) as resp:
            assert resp.headers["X-Sample-Rate"] == "16000"
            arrivals: list[float] = []
            size = 0
            async for piece in resp.content.iter_any():
                arrivals.append(time.monotonic())
                size += len(piece)
    assert arrivals[-1] - arrivals[0] > 0.3
    assert EXPECTED_S[0] < size / 2 / 16000 < EXPECTED_S[1]


@pytest.mark.asyncio
async def test_models_and_openapi(server_url: str) -> None:
    async with aiohttp.ClientSession(server_url) as http:
        async with http.get("/v1/models") as resp:
            ids = {model["id"] for model in (await resp.json())["data"]}
        async with http.get("/openapi.json") as resp:
            spec = await resp.json()
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper"} <= ids
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/audio/speech", "/tts", "/tts/stream", "/tts/pcm", "/ws/tts", "/ws/telephony", "/rtc/offer"):
        assert path in spec["paths"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/audio/speech", {"input": "Hi.", "voice": "alloy", "response_format": "ogg"}, 400, "response_format"),
        ("/v1/audio/speech", {"input": "Hi.", "voice": "alloy", "stream_format": "xml"}, 400, "stream_format"),
        ("/v1/audio/speech", {"input": "Hi.", "voice": "alloy", "model": "tts-9"}, 400, "model"),
        ("/v1/audio/speech", {"input": 5, "voice": "alloy"}, 400, "input"),
        ("/tts/stream", {"text": "Hi.", "format": "mulaw"}, 400, "format"),
        ("/tts/stream", {"text": "Hi.", "format": "opus", "sample_rate": 22050}, 400, "sample_rate"),
        ("/tts/pcm", {"text": "Hi.", "sample_rate": 1000}, 400, "sample_rate"),
        ("/tts/pcm", {"text": ""}, 400, "text"),
    ],
)
async def test_bad_streaming_requests_name_the_field(
    server_url: str, path: str, body: object, status: int, field: str
) -> None:
    async with aiohttp.ClientSession(server_url) as http, http.post(path, json=body) as resp:
        assert resp.status == status
        assert (await resp.json())["error"]["message"].startswith(field)
