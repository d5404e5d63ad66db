"""HTTP routes against the running server: health, voices, OpenAI speech, /tts, errors."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import aiohttp
import openai
import pytest

TEXT = "The quick brown fox jumps over the lazy dog. Then it runs away."


def wav_duration_s(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        return float(wav.getnframes() / wav.getframerate())


@pytest.fixture
def client(server_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server_url + "/v1", api_key="unused") as sdk:
        yield sdk


@pytest.mark.asyncio
async def test_health_readiness_and_voices(server_url: str) -> None:
    async with aiohttp.ClientSession(server_url) as http:
        async with http.get("/healthz") as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
        async with http.get("/readyz") as resp:
            assert resp.status == 200
        async with http.get("/v1/voices") as resp:
            voices = (await resp.json())["voices"]
    assert voices[0]["id"] == "en_US-joe-medium"
    assert voices[0]["backend"] == "piper" and "en" in voices[0]["languages"]
    assert voices[0]["sample_rate"] == 22050


def test_openai_sdk_gets_a_wav(client: openai.OpenAI) -> None:
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav")
    with wave.open(io.BytesIO(speech.content)) as wav:
        assert wav.getframerate() == 24000
        frames = wav.readframes(10**9)
    assert 2.5 < len(frames) / 2 / 24000 < 8


def test_openai_sdk_streams_pcm_at_24_khz(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="en_US-joe-medium", input=TEXT, response_format="pcm"
    ) as response:
        assert response.headers["content-type"] == "audio/pcm"
        pieces = list(response.iter_bytes())
    data = b"".join(pieces)
    assert len(data) % 2 == 0
    assert 2.5 < len(data) / 2 / 24000 < 8


def test_openai_sdk_sees_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="voice: unknown voice 'nobody'") as unknown:
        client.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    assert unknown.value.code == "unknown_voice"
    with pytest.raises(openai.BadRequestError, match="response_format") as bad_format:
        client.audio.speech.create(
            model="tts-1",
            voice="alloy",
            input=TEXT,
            response_format="ogg",  # type: ignore[arg-type]
        )
    assert bad_format.value.code == "unsupported_format"


@pytest.mark.asyncio
async def test_tts_returns_a_whole_wav_at_the_native_rate(server_url: str) -> None:
    async with aiohttp.ClientSession(server_url) as http:
        async with http.post("/tts", json={"text": TEXT, "speed": 1.0}) as resp:
            assert resp.status == 200
            assert resp.headers["X-Sample-Rate"] == "22050"
            data = await resp.read()
    assert 2.5 < wav_duration_s(data) < 8


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        ("/tts", {"text": ""}, 400, "invalid_request", "text"),
        ("/tts", {"text": "x" * 5001}, 413, "text_too_long", "text"),
        ("/tts", {"text": "Hi.", "voice": "nobody"}, 400, "unknown_voice", "voice"),
        ("/tts", {"text": "Hi.", "speed": "fast"}, 400, "invalid_request", "speed"),
        ("/tts", {"text": "Hi.", "speed": 9}, 400, "invalid_request", "speed"),
        ("/tts", {"text": "Hi.", "format": "ogg"}, 400, "unsupported_format", "format"),
        ("/tts", {"txt": "Hi."}, 400, "invalid_request", "text"),
        ("/tts", [1], 400, "invalid_request", "body"),
        ("/v1/audio/speech", {"voice": "alloy"}, 400, "invalid_request", "input"),
        (
            "/v1/audio/speech",
            {"input": "Hi.", "voice": "alloy", "response_format": "xyz"},
            400,
            "unsupported_format",
            "response_format",
        ),
    ],
)
async def test_bad_requests_name_the_field(
    server_url: str, path: str, body: object, status: int, code: str, field: str
) -> None:
    async with aiohttp.ClientSession(server_url) as http, http.post(path, json=body) as resp:
        assert resp.status == status
        error = (await resp.json())["error"]
    assert error["code"] == code
    assert error["message"].startswith(field)


@pytest.mark.asyncio
async def test_non_json_and_oversize_bodies_are_refused(server_url: str) -> None:
    async with aiohttp.ClientSession(server_url) as http:
        async with http.post("/tts", data=b"{not json") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"].startswith("body")
        async with http.post("/tts", data=b"x" * (300 * 1024)) as resp:
            assert resp.status == 413
            assert (await resp.json())["error"]["code"] == "body_too_large"
        async with http.get("/no/such/route") as resp:
            assert resp.status == 404
            assert "error" in await resp.json()
        async with http.get("/healthz") as resp:
            assert resp.status == 200
