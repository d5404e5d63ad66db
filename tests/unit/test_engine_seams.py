"""The engine front over a fake core, and the gateway's remote stream over a fake worker connection.

Fakes stand only at the seams: `EngineCore` under the front, the supervisor's
connection under `RemoteStream` (its frames written with the real wire codecs).
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from media_server.config import Settings
from media_server.engine.front import EngineFront
from media_server.engine.types import SynthesisRequest, Voice
from media_server.errors import Busy, InvalidRequest, NotReady, UnknownVoice, WorkerDied
from media_server.gateway.remote import RemoteStream
from media_server.gateway.wire import AUDIO, END, ERROR, error_to_wire, pcm_to_wire
from tests.fakes import FakeCore

VOICE = Voice(id="v1", name="One", backend="fake", languages=("en", "en-US"), sample_rate=16000)


def test_the_front_refuses_until_the_core_knows_its_voices_and_wakes_it() -> None:
    core = FakeCore(admits=0)
    front = EngineFront(core, Settings())
    with pytest.raises(NotReady):
        front.stream(SynthesisRequest(text="Hello there, how are you?"))
    assert core.woken == 1 and core.submitted == []


def test_the_front_hands_a_checked_request_with_its_voice_and_language_to_the_core() -> None:
    core = FakeCore(known=(VOICE,), admits=0)
    front = EngineFront(core, Settings())
    with pytest.raises(Busy):
        front.stream(SynthesisRequest(text="This is plainly an English sentence."))
    [(request, voice, language)] = core.submitted
    assert voice == VOICE and language == "en" and request.text.startswith("This")


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (SynthesisRequest(text="Hi.", voice="nobody"), UnknownVoice),
        (SynthesisRequest(text="Hi.", speed=9.0), InvalidRequest),
        (SynthesisRequest(text="?!"), InvalidRequest),
    ],
)
def test_a_bad_request_never_reaches_the_core(request_: SynthesisRequest, error: type[Exception]) -> None:
    core = FakeCore(known=(VOICE,), admits=0)
    with pytest.raises(error):
        EngineFront(core, Settings()).stream(request_)
    assert core.submitted == []


class FakeWriter:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeSupervisor:
    """A worker connection whose frames are written up front; counts leases like the real supervisor."""

    frames: bytes
    leases: int = 0
    writer: FakeWriter = field(default_factory=FakeWriter)

    async def open_request(self, message: dict[str, Any]) -> tuple[asyncio.StreamReader, FakeWriter, dict[str, Any]]:
        assert message["op"] == "synthesize"
        reader = asyncio.StreamReader()
        reader.feed_data(self.frames)
        reader.feed_eof()
        self.leases += 1
        return reader, self.writer, {"timings": {"text_prep_s": 0.001, "queue_wait_s": 0.002, "first_step_s": 0.02}}

    def release(self) -> None:
        self.leases -= 1


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BI", kind, len(payload)) + payload


def remote(frames: bytes) -> tuple[RemoteStream, FakeSupervisor]:
    supervisor = FakeSupervisor(frames)
    stream = RemoteStream(supervisor, SynthesisRequest(text="Hi."), VOICE, "en")  # type: ignore[arg-type]
    return stream, supervisor


@pytest.mark.asyncio
async def test_a_remote_stream_yields_the_workers_audio_then_ends_and_lets_go() -> None:
    pcm = np.arange(320, dtype=np.int16)
    stream, supervisor = remote(frame(AUDIO, pcm_to_wire(pcm)) * 2 + frame(END))
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert [chunk.index for chunk in chunks] == [0, 1] and np.array_equal(chunks[1].pcm, pcm)
    assert stream.timings.first_step_s == 0.02
    assert supervisor.leases == 0 and supervisor.writer.closed


@pytest.mark.asyncio
async def test_a_worker_refusal_is_raised_as_the_same_error() -> None:
    refusal = Busy("the real-time synthesis queue is full (1 requests); retry shortly", retry_after_s=2.0)
    stream, supervisor = remote(frame(ERROR, json.dumps(error_to_wire(refusal)).encode()))
    with pytest.raises(Busy, match="queue is full") as raised:
        await stream.wait_ready()
    assert raised.value.retry_after_s == 2.0
    assert supervisor.leases == 0


@pytest.mark.asyncio
async def test_a_worker_gone_mid_stream_is_worker_died() -> None:
    stream, supervisor = remote(frame(AUDIO, pcm_to_wire(np.zeros(160, dtype=np.int16))))
    async with stream:
        assert len((await anext(stream)).pcm) == 160
        with pytest.raises(WorkerDied):
            await anext(stream)
    assert supervisor.leases == 0


@pytest.mark.asyncio
async def test_closing_a_remote_stream_early_hangs_up_its_connection() -> None:
    stream, supervisor = remote(frame(AUDIO, pcm_to_wire(np.zeros(160, dtype=np.int16))) * 3 + frame(END))
    async with stream:
        await anext(stream)
    assert supervisor.writer.closed and supervisor.leases == 0
