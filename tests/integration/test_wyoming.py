"""The official `wyoming` package's TCP client against our Wyoming server (`WYOMING_PORT`): describe, one-shot
and streaming synthesis, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from loadtest.server_process import free_port
from tests.server import RunningServer, start_server

VOICE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def wyoming_port() -> Iterator[int]:
    port = free_port()
    server: RunningServer = start_server({"WYOMING_PORT": str(port)})
    yield port
    server.stop()


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
