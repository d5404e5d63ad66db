"""Nothing fails silently: no 200 with empty audio, no utterance that just ends without audio or an error.

Text with nothing to speak is refused before the engine is charged; a model whose
whole output is silence (a tiny random-weight Qwen3-TTS checkpoint whose codec
decodes every code to silence, loaded through the real path) ends the request in
a `no_audio` error and a metric, on every route and the session protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from clients.metrics import sample, scrape
from tests.server import RunningServer, start_server

UNSPEAKABLE = ["?!...", "$%&*", "🙂🙂🙂", " — ; ; ", "\u00b9\U0001607e"]
"""The last has a digit, but in it the voice's phonemizer finds no sound (found by the OpenAPI fuzzing)."""


async def session_events(url: str, *messages: dict[str, Any], until: tuple[str, ...] = ("done", "error")) -> list[str]:
    """The event types a WebSocket session answers `messages` with, up to the first of `until`."""
    kinds: list[str] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws/tts") as ws:
        for message in messages:
            await ws.send_json(message)
        async for frame in ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(frame.data)
                kinds.append(event["type"] if event["type"] != "error" else f"error:{event['code']}")
                if event["type"] in until:
                    break
    return kinds


@pytest.mark.asyncio
@pytest.mark.parametrize("text", UNSPEAKABLE)
async def test_text_with_nothing_to_speak_is_a_400_on_rest(server_url: str, text: str) -> None:
    async with aiohttp.ClientSession() as http:
        for route, body in (
            ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": text}),
            ("/tts", {"text": text}),
            ("/tts/pcm", {"text": text}),
        ):
            async with http.post(server_url + route, json=body) as response:
                assert response.status == 400, route
                assert (await response.json())["error"]["code"] == "nothing_to_speak"


@pytest.mark.asyncio
async def test_a_session_utterance_with_nothing_to_speak_ends_in_an_error(server_url: str) -> None:
    spoken = await session_events(server_url, {"type": "speak", "text": "?!", "id": "x"})
    assert spoken == ["error:nothing_to_speak"]
    streamed = await session_events(server_url, {"type": "append", "text": "... ?! "}, {"type": "flush"})
    assert streamed == ["error:nothing_to_speak"]


@pytest.fixture(scope="module")
def silent_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    pytest.importorskip("qwen_tts")
    from tests.qwen_checkpoint import tiny_server_env

    server = start_server(tiny_server_env(tmp_path_factory, silent=True))
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_a_model_that_makes_only_silence_is_an_error_not_an_empty_success(silent_model: RunningServer) -> None:
    url = silent_model.url
    async with aiohttp.ClientSession() as http:
        for route, body in (
            ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "Hello there."}),
            ("/tts", {"text": "Hello there."}),
            ("/tts/pcm", {"text": "Hello there."}),
        ):
            async with http.post(url + route, json=body) as response:
                assert response.status == 500, route
                assert (await response.json())["error"]["code"] == "no_audio"
    assert await session_events(url, {"type": "speak", "text": "Hello there.", "id": "s"}) == [
        "started",
        "error:no_audio",
    ]
    metrics = (await scrape(url)).samples
    assert metrics[sample("media_server_engine_requests_total", outcome="no_audio")] == 4
