"""No single request can take the machine: the worst texts under the length limit, bounded RSS.

Text without whitespace used to be one model run over thousands of phonemes (RSS
272 MB -> 1.9 GB for 2,400 characters; about 21 GB for 4,800). Now every unit of
model work is bounded (pieces of at most 200 phoneme ids, windows of frames), so a
request costs a bounded amount of memory whatever its text. The bound stated here:
a warm server grows by less than 200 MiB over a run of such requests, on the REST
and WebSocket routes, and its RSS stays under 1 GiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import psutil
import pytest

from tests.server import RunningServer, start_server

MIB = 2**20
GROWTH_BOUND = 200 * MIB
RSS_BOUND = 1024 * MIB
WORST_TEXTS = ("1," * 1200, "word," * 480, "a" * 2400)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start_server({"AUDIO_CACHE_BYTES": "0"})
    yield running
    running.stop()


def rss(server: RunningServer) -> int:
    value: int = psutil.Process(server.process.pid).memory_info().rss
    return value


async def speak_rest(http: aiohttp.ClientSession, url: str, text: str) -> int:
    async with http.post(url + "/tts/pcm", json={"text": text}) as response:
        assert response.status == 200
        return len(await response.read())


async def speak_websocket_briefly(http: aiohttp.ClientSession, url: str, text: str) -> None:
    """Speak over the WebSocket until a few seconds of audio came, then cancel."""
    async with http.ws_connect(url + "/ws/tts") as ws:
        await ws.send_json({"type": "speak", "text": text, "id": "worst"})
        audio = 0
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                audio += len(message.data)
                if audio > 24000 * 2 * 5:
                    await ws.send_json({"type": "cancel"})
            elif json.loads(message.data)["type"] in ("cancelled", "done", "error"):
                break


@pytest.mark.asyncio
async def test_the_worst_texts_under_the_limit_cost_bounded_memory(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        await speak_rest(http, server.url, "Warming up every code path once.")
        before = rss(server)
        for text in WORST_TEXTS:
            assert await speak_rest(http, server.url, text) > 24000 * 2 * 10  # real audio, not an error
            await speak_websocket_briefly(http, server.url, text)
        after = rss(server)
    assert after - before < GROWTH_BOUND, f"RSS grew {(after - before) / MIB:.0f} MiB"
    assert after < RSS_BOUND
