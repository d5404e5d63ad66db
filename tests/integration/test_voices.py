"""Voice cloning over HTTP against a real server running the tiny random-weight Qwen3-TTS Base model."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.server import RunningServer, start_server

pytest.importorskip("qwen_tts")


def reference_wav(seconds: float = 2.0, rate: int = 16000, pitch: float = 140.0) -> bytes:
    """A voiced, speech-like signal: harmonics of `pitch` with a syllable-rate envelope."""
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    pcm = (voiced * envelope * 4000).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from tests.qwen_checkpoint import tiny_server_env

    server = start_server(tiny_server_env(tmp_path_factory))
    yield server
    server.stop()


def clone_form(audio: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("audio", audio, filename="reference.wav", content_type="audio/wav")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


@pytest.mark.asyncio
async def test_clone_use_persist_and_delete(qwen_server: RunningServer) -> None:
    async with aiohttp.ClientSession(qwen_server.url) as http:
        async with http.post(
            "/v1/voices", data=clone_form(reference_wav(), transcript="Hello there.", name="Ada")
        ) as r:
            assert r.status == 201, await r.text()
            voice = await r.json()
        async with http.post("/v1/voices", data=clone_form(reference_wav(), transcript="Hello there.")) as r:
            assert (await r.json())["id"] == voice["id"]  # the same reference is cloned once
        async with http.get("/v1/voices") as r:
            assert voice["id"] in {v["id"] for v in (await r.json())["voices"]}
        async with http.post("/tts", json={"text": "Speaking with a cloned voice.", "voice": voice["id"]}) as r:
            assert r.status == 200
            assert len(await r.read()) > 1000
        async with http.post(
            "/clone", data=clone_form(reference_wav(), text="One shot.", transcript="Hello there.")
        ) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
    restarted = start_server(qwen_server.env)
    try:
        async with aiohttp.ClientSession(restarted.url) as http:
            async with http.get("/v1/voices") as r:
                assert voice["id"] in {v["id"] for v in (await r.json())["voices"]}  # persisted on disk
            async with http.delete(f"/v1/voices/{voice['id']}") as r:
                assert r.status == 200
            async with http.delete(f"/v1/voices/{voice['id']}") as r:
                assert r.status == 404
    finally:
        restarted.stop()


def text_only_form(**fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value, content_type="text/plain")
    return form


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("form", "field"),
    [
        (clone_form(b"not audio at all"), "audio"),
        (clone_form(reference_wav(seconds=0.3)), "reference_audio"),
        (clone_form(np.zeros(32000, dtype=np.int16).tobytes()), "audio"),
        (text_only_form(transcript="no audio"), "audio"),
        (text_only_form(audio_url="https://example.com/a.wav"), "url"),
    ],
)
async def test_bad_references_are_refused(qwen_server: RunningServer, form: aiohttp.FormData, field: str) -> None:
    async with aiohttp.ClientSession(qwen_server.url) as http, http.post("/v1/voices", data=form) as r:
        assert 400 <= r.status < 500
        assert (await r.json())["error"]["message"].startswith(field)


@pytest.mark.asyncio
async def test_piper_cannot_clone(server_url: str, tmp_path: Path) -> None:
    async with (
        aiohttp.ClientSession(server_url) as http,
        http.post("/v1/voices", data=clone_form(reference_wav())) as r,
    ):
        assert r.status == 400
        assert "qwen" in (await r.json())["error"]["message"]
