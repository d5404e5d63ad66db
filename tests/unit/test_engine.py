"""The engine with the real Piper backend: streaming, priority, cancellation, admission."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from media_server.audio.constants import FRAME_SAMPLES
from media_server.config import Settings
from media_server.engine.core import LocalCore
from media_server.engine.front import EngineFront
from media_server.engine.types import Priority, SynthesisRequest
from media_server.errors import Busy, InvalidRequest, TextTooLong, UnknownVoice, UnsupportedLanguage
from media_server.session.output import PlayoutQueue

LONG_TEXT = " ".join(
    [
        "The first sentence is short.",
        "The second sentence is a good deal longer than the first one was.",
        "A third sentence follows, and it keeps going for a while before it ends.",
        "Then a fourth, so that there is plenty of work left after the first chunk.",
    ]
)


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[EngineFront]:
    settings = Settings(engine_workers=1, max_queue=2, max_batch_queue=2, max_text_chars=500, engine_max_outstanding=3)
    client = EngineFront(LocalCore(settings), settings)
    await client.start()
    yield client
    await client.stop()


@pytest.mark.asyncio
async def test_first_chunk_arrives_long_before_the_last(engine: EngineFront) -> None:
    arrivals: list[float] = []
    async with engine.stream(SynthesisRequest(text=LONG_TEXT)) as chunks:
        async for chunk in chunks:
            # Every chunk carries audio, but the last may carry only the words whose end it settles.
            assert chunk.sample_rate == 22050 and (len(chunk.pcm) > 0 or chunk.words)
            arrivals.append(time.monotonic())
    assert len(arrivals) >= 4
    assert arrivals[0] < arrivals[-1] - 0.1
    assert engine.stats().completed == 1


@pytest.mark.asyncio
async def test_realtime_requests_overtake_batch_work(engine: EngineFront) -> None:
    order: list[str] = []

    async def consume(request: SynthesisRequest) -> None:
        async with engine.stream(request) as chunks:
            async for chunk in chunks:
                order.append(f"{request.priority.name}:{chunk.index}")

    batch = asyncio.create_task(consume(SynthesisRequest(text=LONG_TEXT, priority=Priority.BATCH)))
    await asyncio.sleep(0)
    realtime = SynthesisRequest(text="Urgent words, right now.", priority=Priority.REALTIME)
    await consume(realtime)
    await batch
    # The single worker was busy with the batch request's first step; the
    # real-time request goes next and finishes before the batch one resumes.
    assert order.index("REALTIME:0") <= 1
    last_realtime = max(i for i, name in enumerate(order) if name.startswith("REALTIME"))
    assert all(name.startswith("BATCH") for name in order[last_realtime + 1 :])
    assert order.index("BATCH:1") > last_realtime


@pytest.mark.asyncio
async def test_leaving_the_stream_frees_the_slot_at_the_next_step(engine: EngineFront) -> None:
    async with engine.stream(SynthesisRequest(text=LONG_TEXT)) as chunks:
        await anext(chunks)
    # The engine publishes snapshots, not events: poll the snapshot for at most one step.
    async with asyncio.timeout(2):
        while engine.stats().queued:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert engine.stats().cancelled == 1
    assert engine.stats().completed == 0


@pytest.mark.asyncio
async def test_a_reader_that_falls_behind_parks_its_job(engine: EngineFront) -> None:
    many_sentences = " ".join(f"This is sentence number {n}." for n in range(12))
    async with engine.stream(SynthesisRequest(text=many_sentences)) as chunks:
        async with asyncio.timeout(5):
            while not engine.stats().parked:  # noqa: ASYNC110  (stats are snapshots, not events)
                await asyncio.sleep(0.01)
        steps = engine.stats().steps
        await asyncio.sleep(0.2)
        assert engine.stats().steps == steps  # parked: no model time while the reader is behind
        received = [chunk async for chunk in chunks]
    assert len(received) > 12  # a sentence is several windows
    assert engine.stats().completed == 1


@pytest.mark.asyncio
async def test_a_full_queue_refuses_at_once(engine: EngineFront) -> None:
    first = engine.stream(SynthesisRequest(text=LONG_TEXT))
    second = engine.stream(SynthesisRequest(text=LONG_TEXT))
    with pytest.raises(Busy):
        engine.stream(SynthesisRequest(text="One too many."))
    first.close()
    second.close()
    assert engine.stats().refused == 1


@pytest.mark.asyncio
async def test_bad_requests_are_refused_with_the_field_named(engine: EngineFront) -> None:
    with pytest.raises(InvalidRequest, match="text"):
        engine.stream(SynthesisRequest(text="   "))
    with pytest.raises(TextTooLong, match="500"):
        engine.stream(SynthesisRequest(text="a" * 501))
    with pytest.raises(UnknownVoice, match="nobody"):
        engine.stream(SynthesisRequest(text="Hi.", voice="nobody"))
    with pytest.raises(InvalidRequest, match="speed"):
        engine.stream(SynthesisRequest(text="Hi.", speed=0))
    assert engine.stats().queued == 0


@pytest.mark.asyncio
async def test_speed_changes_duration(engine: EngineFront) -> None:
    async def duration(speed: float) -> float:
        async with engine.stream(SynthesisRequest(text="A sentence of moderate length.", speed=speed)) as chunks:
            return sum([chunk.duration_s async for chunk in chunks])

    normal, fast = await duration(1.0), await duration(1.5)
    assert fast / normal == pytest.approx(1 / 1.5, rel=0.08)


@pytest.mark.asyncio
async def test_a_cache_hit_replays_identical_audio_without_the_backend(engine: EngineFront) -> None:
    async def synthesize() -> list[bytes]:
        async with engine.stream(SynthesisRequest(text="Cache me if you can. Twice.")) as chunks:
            return [chunk.pcm.tobytes() async for chunk in chunks]

    first = await synthesize()
    steps = engine.stats().steps
    again = await synthesize()
    assert again == first
    assert engine.stats().steps == steps  # answered from the cache: no model step at all
    assert engine.stats().cache_bytes >= sum(len(chunk) for chunk in first)


@pytest.mark.asyncio
async def test_language_is_detected_and_a_foreign_text_is_refused(engine: EngineFront) -> None:
    async with engine.stream(SynthesisRequest(text="This is plainly an English sentence.")) as chunks:
        assert chunks.language == "en"
    with pytest.raises(UnsupportedLanguage, match="language"):
        engine.stream(SynthesisRequest(text="Ceci est une phrase tout à fait française, sans aucun doute."))
    with pytest.raises(UnsupportedLanguage, match="'de'"):
        engine.stream(SynthesisRequest(text="Hello.", language="de"))


@pytest.mark.asyncio
async def test_numbers_are_read_out(engine: EngineFront) -> None:
    async def seconds(text: str) -> float:
        async with engine.stream(SynthesisRequest(text=text)) as chunks:
            return sum([chunk.duration_s async for chunk in chunks])

    # "1,234,567" read as words takes far longer than the digits would as symbols.
    assert await seconds("It costs $1,234,567.") > await seconds("It costs a lot.") + 1.5


def largest_jump(pcm: np.ndarray) -> int:
    return int(np.abs(np.diff(pcm.astype(np.int32))).max(initial=0))


@pytest.mark.asyncio
async def test_chunk_joins_do_not_click_and_speech_starts_at_once(engine: EngineFront) -> None:
    async with engine.stream(SynthesisRequest(text=LONG_TEXT)) as chunks:
        pieces = [chunk.pcm async for chunk in chunks]
    audio = np.concatenate(pieces)
    joins = np.cumsum([len(piece) for piece in pieces])[:-1]
    # A join is as smooth as the speech itself: no step at a boundary beyond the signal's own steps.
    typical = float(np.percentile(np.abs(np.diff(audio.astype(np.int32))), 99.9))
    for join in joins:
        assert largest_jump(audio[join - 2 : join + 2]) <= typical
    # Leading silence is trimmed: speech energy within the first 30 ms.
    window = 22050 * 5 // 1000
    energy = [float(np.sqrt(np.mean(audio[i : i + window].astype(np.float64) ** 2))) for i in range(0, 22050, window)]
    first_loud = next(i for i, rms in enumerate(energy) if rms > max(energy) * 10 ** (-40 / 20))
    assert first_loud * 5 <= 30


@pytest.mark.asyncio
async def test_a_cancel_mid_word_fades_out_instead_of_clicking(engine: EngineFront) -> None:
    async with engine.stream(SynthesisRequest(text="Absolutely wonderful.")) as chunks:
        speech = np.concatenate([chunk.pcm async for chunk in chunks])
    frame_ends = np.abs(speech[FRAME_SAMPLES - 1 :: FRAME_SAMPLES].astype(np.int32))
    cut = int(np.argmax(frame_ends))  # a loud moment: dropping straight to silence there would click
    buffer = PlayoutQueue()
    fade = buffer.fade_samples
    buffer.push("u", speech)
    for _ in range(cut + 1):
        buffer.next_frame()
    buffer.clear()
    after = buffer.next_frame()[0].astype(np.int32)
    resumed = (cut + 1) * FRAME_SAMPLES
    natural = speech[resumed : resumed + fade].astype(np.int32)
    # The cut continues the waveform where it stopped, then glides to silence no faster than
    # the speech itself moved plus the steepest step of a 5 ms raised cosine at its loudest level
    # (pi/2 times a straight ramp's): nothing clicks.
    assert after[0] == natural[0]
    ramp_step = int(np.abs(speech).max()) * math.pi / 2 / fade + 1
    assert np.all(np.abs(np.diff(after[: fade + 1])) <= np.abs(np.diff(natural)).max(initial=0) + ramp_step)
    assert not np.any(after[fade:])
