"""The command line: `say`, `voices`, `--help`, and serving on a Unix socket too."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import wave
from pathlib import Path

import aiohttp
import pytest

from tests.server import start_server


def media_server(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "media_server", *args], capture_output=True, timeout=120)


def test_say_writes_a_wav_without_a_server(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = media_server("say", "Hello from the command line.", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 22050
        assert 1.0 < wav.getnframes() / wav.getframerate() < 5.0


def test_voices_and_help() -> None:
    voices = media_server("voices")
    assert voices.returncode == 0
    assert b"en_US-joe-medium" in voices.stdout
    usage = media_server("--help")
    assert b"serve" in usage.stdout and b"say" in usage.stdout
    bad = media_server("say", "x", "--voice", "nobody")
    assert bad.returncode == 2 and b"unknown_voice" in bad.stderr


@pytest.mark.asyncio
async def test_serves_on_a_unix_socket_as_well(tmp_path: Path) -> None:
    path = tmp_path / "media.sock"
    server = start_server({"UNIX": str(path)})
    try:
        connector = aiohttp.UnixConnector(path=str(path))
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get("http://unix/healthz") as resp:
                assert resp.status == 200
            async with http.post("http://unix/tts", json={"text": "Over a Unix socket."}) as resp:
                assert resp.status == 200
                assert len(await resp.read()) > 10_000
        async with aiohttp.ClientSession(server.url) as http, http.get("/healthz") as resp:
            assert resp.status == 200
    finally:
        await asyncio.to_thread(server.stop)
