"""The qwen backend behind the real EngineFront and scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

pytest.importorskip("qwen_tts")

from media_server.config import Settings
from media_server.engine.core import LocalCore
from media_server.engine.front import EngineFront
from media_server.engine.types import Priority, SamplingParams, SynthesisRequest


@pytest_asyncio.fixture
async def engine(base_model: Path, tmp_path: Path) -> AsyncIterator[EngineFront]:
    settings = Settings(
        tts_backend="qwen",
        qwen_model=str(base_model),
        qwen_device="cpu",
        qwen_max_batch=2,
        qwen_warmup=False,
        engine_workers=1,
        voice_cache_dir=str(tmp_path / "voices"),
    )
    client = EngineFront(LocalCore(settings), settings)
    await client.start()
    yield client
    await client.stop()


@pytest.mark.asyncio
async def test_the_engine_streams_qwen_audio(engine: EngineFront) -> None:
    [voice] = engine.voices()
    assert (voice.id, voice.sample_rate) == ("default", 24000)
    request = SynthesisRequest(text="Hello there. How are you?", priority=Priority.REALTIME)
    async with engine.stream(request) as chunks:
        received = [chunk async for chunk in chunks]
    assert received and all(chunk.sample_rate == 24000 for chunk in received)
    assert sum(len(chunk.pcm) for chunk in received) > 0
    assert engine.stats().completed == 1


@pytest.mark.asyncio
async def test_concurrent_streams_share_batches_and_leaving_frees_the_slot(engine: EngineFront) -> None:
    async def speak(seed: int) -> int:
        request = SynthesisRequest(text="Hello there. How are you?", sampling=SamplingParams(seed=seed))
        async with engine.stream(request) as chunks:
            return sum([len(chunk.pcm) async for chunk in chunks])

    left = SynthesisRequest(text="Hello there. How are you today?", priority=Priority.REALTIME)
    async with engine.stream(left) as chunks:
        await anext(chunks)
    totals = await asyncio.gather(*(speak(seed) for seed in range(3)))
    assert all(total > 0 for total in totals)
    assert engine.stats().cancelled == 1
    assert engine.stats().completed == 3
