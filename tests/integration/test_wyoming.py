"""The official `wyoming` package's TCP client against our Wyoming server (`WYOMING_PORT`): describe, one-shot
and streaming synthesis, SSML (`text_format`), errors; and the server found as Home Assistant finds it, by its
mDNS announcement (`WYOMING_ZEROCONF`; `HOST` is loopback, so the announcement stays on `lo`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeTextFormat,
    SynthesizeVoice,
)
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from loadtest.server_process import free_port
from tests.server import RunningServer, start_server

VOICE = "en_US-joe-medium"
NAME = f"media-server-test-{os.getpid()}"
SERVICE = "_wyoming._tcp.local."


@pytest.fixture(scope="module")
def wyoming_port() -> Iterator[int]:
    port = free_port()
    server: RunningServer = start_server({"WYOMING_PORT": str(port), "WYOMING_ZEROCONF": NAME})
    yield port
    server.stop()


@pytest.mark.asyncio
async def test_found_by_its_mdns_announcement_then_describes_itself(wyoming_port: int) -> None:
    browser = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        found = AsyncServiceInfo(SERVICE, f"{NAME}.{SERVICE}")
        assert await found.async_request(browser.zeroconf, 10_000)
    finally:
        await browser.async_close()
    assert found.port == wyoming_port
    [address] = found.addresses
    async with AsyncTcpClient(socket.inet_ntoa(address), wyoming_port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await client.read_event())
    assert [voice.name for voice in info.tts[0].voices] == [VOICE]


async def events_until(client: AsyncTcpClient, last: str) -> list[Event]:
    events: list[Event] = []
    while (event := await client.read_event()) is not None:
        events.append(event)
        if event.type in (last, "error"):
            break
    return events


def audio_of(events: list[Event]) -> tuple[AudioStart, bytes, int]:
    """The stream's start, its audio, and how many starts and stops framed it (one of each)."""
    kinds = [event.type for event in events]
    start = AudioStart.from_event(events[kinds.index("audio-start")])
    audio = b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))
    framed = kinds.count("audio-start") + kinds.count("audio-stop")
    assert kinds.index("audio-start") < kinds.index("audio-chunk") and kinds.index("audio-stop") > max(
        i for i, kind in enumerate(kinds) if kind == "audio-chunk"
    )
    return start, audio, framed


@pytest.mark.asyncio
async def test_describe_lists_our_voices_with_streaming(wyoming_port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await client.read_event())
    [program] = info.tts
    assert program.supports_synthesize_streaming
    assert [voice.name for voice in program.voices] == [VOICE]
    assert "en_US" in program.voices[0].languages


@pytest.mark.asyncio
async def test_one_shot_synthesis(wyoming_port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        voice = SynthesizeVoice(name=VOICE)
        await client.write_event(Synthesize(text="Hello from Home Assistant.", voice=voice).event())
        events = await events_until(client, AudioStop().event().type)
    start, audio, framed = audio_of(events)
    assert (start.rate, start.width, start.channels, framed) == (22050, 2, 1, 2)
    assert 1.0 < len(audio) / 2 / start.rate < 3.0


@pytest.mark.asyncio
async def test_streaming_synthesis_is_one_utterance_then_stopped(wyoming_port: int) -> None:
    text = "The kitchen lights are on. The front door is locked, and the heating is set to twenty degrees."
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=VOICE)).event())
        for word in text.split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        await client.write_event(Synthesize(text=text).event())  # Home Assistant's copy for older servers
        await client.write_event(SynthesizeStop().event())
        events = await events_until(client, SynthesizeStopped().event().type)
    assert events[-1].type == "synthesize-stopped"
    start, audio, framed = audio_of(events)
    assert framed == 2
    assert 4.0 < len(audio) / 2 / start.rate < 9.0


@pytest.mark.asyncio
async def test_a_refused_request_is_an_error_event(wyoming_port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="nobody")).event())
        error = Error.from_event(await client.read_event())
        assert error.code == "unknown_voice" and "voice" in error.text
        await client.write_event(SynthesizeChunk(text="orphan").event())
        error = Error.from_event(await client.read_event())
        assert error.code == "invalid_request" and error.text.startswith("synthesize-chunk")
        await client.write_event(Synthesize(text="Still answering.").event())
        _, audio, _ = audio_of(await events_until(client, "audio-stop"))
    assert audio


DOCUMENT = '<speak>Lights <break time="1200ms"/> are <sub alias="switched off">off</sub>.</speak>'


def longest_silence_s(audio: bytes, rate: int) -> float:
    """The longest run of exact zero samples (a `<break>` is exact silence; speech never is for this long)."""
    samples = np.frombuffer(audio, dtype=np.int16)
    longest = run = 0
    for zero in samples == 0:
        run = run + 1 if zero else 0
        longest = max(longest, run)
    return longest / rate


@pytest.mark.asyncio
async def test_ssml_is_spoken_as_ssml_one_shot_and_streamed_whole(wyoming_port: int) -> None:
    ssml = SynthesizeTextFormat.SSML
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(Synthesize(text=DOCUMENT, voice=SynthesizeVoice(name=VOICE), text_format=ssml).event())
        one_shot = audio_of(await events_until(client, AudioStop().event().type))
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=VOICE), text_format=ssml).event())
        for piece in (DOCUMENT[:20], DOCUMENT[20:45], DOCUMENT[45:]):  # cut inside tags
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(SynthesizeStop().event())
        streamed_events = await events_until(client, SynthesizeStopped().event().type)
        await client.write_event(Synthesize(text=DOCUMENT, voice=SynthesizeVoice(name=VOICE)).event())
        as_text = audio_of(await events_until(client, AudioStop().event().type))
    assert streamed_events[-1].type == "synthesize-stopped"
    streamed = audio_of(streamed_events)
    for start, audio, framed in (one_shot, streamed):
        assert framed == 2
        assert 1.2 <= longest_silence_s(audio, start.rate) < 1.3
    assert longest_silence_s(as_text[1], as_text[0].rate) < 0.5  # without text_format the markup is text


@pytest.mark.asyncio
async def test_bad_ssml_and_an_unknown_text_format_are_error_events(wyoming_port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(Synthesize(text="<speak>Hi", text_format=SynthesizeTextFormat.SSML).event())
        error = Error.from_event(await client.read_event())
        assert error.code == "invalid_ssml" and "line 1" in error.text
        await client.write_event(Synthesize(text="Hi.", text_format="markdown").event())
        error = Error.from_event(await client.read_event())
        assert error.code == "invalid_request" and error.text.startswith("text_format")
