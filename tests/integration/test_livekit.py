"""LiveKit Agents' own TTS plugins, unchanged, pointed at this server: Cartesia (`/tts/websocket`,
`/tts/bytes`) and OpenAI (`/v1`), run standalone (no LiveKit server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from livekit.agents import APIConnectOptions
from livekit.agents.tts import SynthesizedAudio
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.plugins import cartesia, openai

VOICE = "en_US-joe-medium"
RATE = 24000
TEXT = "Hello from LiveKit. The server speaks Cartesia's protocol, word timings included."
OPTIONS = APIConnectOptions(max_retry=0, timeout=20)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def cartesia_tts(server_url: str, http: aiohttp.ClientSession) -> cartesia.TTS:
    return cartesia.TTS(api_key="unused", base_url=server_url, voice=VOICE, sample_rate=RATE, http_session=http)


def seconds(events: list[SynthesizedAudio]) -> float:
    return sum(event.frame.samples_per_channel for event in events) / RATE


@pytest.mark.asyncio
async def test_cartesia_plugin_streams_audio_and_timed_words(server_url: str, http: aiohttp.ClientSession) -> None:
    tts = cartesia_tts(server_url, http)
    stream = tts.stream(conn_options=OPTIONS)
    for token in TEXT.split(" "):
        stream.push_text(token + " ")
    stream.end_input()
    events = [event async for event in stream]
    await tts.aclose()
    assert seconds(events) > 3.0
    assert all(event.frame.sample_rate == RATE for event in events)
    timed = [t for event in events for t in event.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]
    assert "".join(str(t) for t in timed).split() == TEXT.split()
    starts = [t.start_time for t in timed]
    assert starts == sorted(starts) and 0 <= starts[0] < 0.3 and starts[-1] < seconds(events)


@pytest.mark.asyncio
async def test_cartesia_plugin_one_shot_over_tts_bytes(server_url: str, http: aiohttp.ClientSession) -> None:
    tts = cartesia_tts(server_url, http)
    events = [event async for event in tts.synthesize(TEXT, conn_options=OPTIONS)]
    await tts.aclose()
    assert seconds(events) > 3.0


@pytest.mark.asyncio
async def test_openai_plugin_with_our_base_url(server_url: str, http: aiohttp.ClientSession) -> None:
    tts = openai.TTS(base_url=server_url + "/v1", api_key="unused", model="tts-1", voice="alloy", response_format="pcm")
    events = [event async for event in tts.synthesize(TEXT, conn_options=OPTIONS)]
    await tts.aclose()
    assert sum(event.frame.samples_per_channel / event.frame.sample_rate for event in events) > 3.0
