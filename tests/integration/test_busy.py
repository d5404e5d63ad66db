"""A full engine queue refuses at once: 503 with Retry-After on HTTP, `busy` on the data channel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from clients.rtc import SpeechClient
from tests.server import RunningServer, start_server

LONG_TEXT = "This sentence keeps the only engine slot busy for a while. " * 12


@pytest.fixture(scope="module")
def tiny_server() -> Iterator[RunningServer]:
    server = start_server({"MAX_QUEUE": "1", "MAX_BATCH_QUEUE": "1", "ENGINE_WORKERS": "1"})
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_full_queues_are_503_and_busy_and_batch_never_takes_real_time_capacity(
    tiny_server: RunningServer,
) -> None:
    peer = SpeechClient(tiny_server.url)
    await peer.connect()
    async with aiohttp.ClientSession(tiny_server.url) as http:
        batch = {"input": LONG_TEXT, "voice": "alloy", "response_format": "pcm"}
        async with http.post("/v1/audio/speech", json=batch) as batch_holder:
            assert batch_holder.status == 200
            await batch_holder.content.readexactly(4096)  # admitted and streaming: the batch slot is taken
            async with http.post("/tts", json={"text": "Me too."}) as refused:
                assert refused.status == 503
                assert int(refused.headers["Retry-After"]) >= 1
                assert (await refused.json())["error"]["code"] == "busy"
            async with http.post("/tts/pcm", json={"text": LONG_TEXT}) as live_holder:
                assert live_holder.status == 200  # real-time work has its own capacity
                await live_holder.content.readexactly(4096)
                sent = peer.send({"type": "speak", "text": "And me.", "id": "b"})
                _, error = await peer.wait_event("error", "b", after=sent)
                assert error["code"] == "busy"
        # The holders hung up early: their slots are freed promptly and the server serves again.
        async with asyncio.timeout(2):
            while True:
                async with http.post("/tts", json={"text": "Back to normal."}) as resp:
                    if resp.status == 200:
                        break
                    assert resp.status == 503
    await peer.close()
