"""Token-level streaming: when audio comes, that it equals the one-shot decode, and how long utterances run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

pytest.importorskip("qwen_tts")

import torch
from qwen_tts import Qwen3TTSTokenizer

from media_server.engine.backends.qwen.backend import QwenBackend
from media_server.engine.backends.qwen.sequence import (
    BASE_FRAMES,
    FRAMES_PER_TEXT_TOKEN,
    MAX_SEGMENT_FRAMES,
    MIN_SEGMENT_FRAMES,
    frame_budget,
)
from media_server.engine.types import SamplingParams, SynthesisRequest

if TYPE_CHECKING:
    from tests.unit.qwen.conftest import BackendFactory, Speaker

SAMPLES_PER_FRAME = 1920
STREAM_TOLERANCE = 8
"""int16 steps (-72 dBFS). Measured on this checkpoint: at most 3, mean 0.06, over 20 utterances with
chunkings (1, 4), (2, 3), (1, 1), (3, 8); the difference is float rounding between decoding a few frames
with carried state and all frames at once. The bound leaves room for other CPUs' BLAS kernels."""


def _request(text: str, seed: int = 7) -> SynthesisRequest:
    return SynthesisRequest(text=text, sampling=SamplingParams(seed=seed))


def _expected_chunks(frames: int, first: int, chunk: int) -> list[int]:
    """Frames of audio returned by each step of a one-segment utterance of `frames` frames."""
    out, pending, emitted = [], 0, 0
    for frame in range(1, frames + 1):
        pending += 1
        if pending >= (first if emitted == 0 else chunk) or frame == frames:
            out.append(pending)
            emitted, pending = emitted + pending, 0
        else:
            out.append(0)
    return out


@pytest.mark.parametrize(("first", "chunk"), [(1, 4), (2, 3)])
def test_first_audio_after_the_first_chunk_then_every_chunk(
    make_backend: BackendFactory, custom_voice_model: Path, speak: Speaker, first: int, chunk: int
) -> None:
    backend = make_backend(custom_voice_model, qwen_first_chunk_frames=first, qwen_chunk_frames=chunk)
    sequence = backend.open(_request("Hi."), backend.voices()[0])
    [steps] = speak(backend, [sequence])
    assert all(len(pcm) % SAMPLES_PER_FRAME == 0 for pcm in steps)
    frames = [len(pcm) // SAMPLES_PER_FRAME for pcm in steps]
    assert frames == _expected_chunks(len(sequence.codes), first, chunk)
    assert frames[first - 1] == first


@pytest.fixture(scope="module")
def codec(custom_voice_model: Path) -> Qwen3TTSTokenizer:
    """The checkpoint's speech tokenizer, loaded on its own through qwen_tts."""
    return Qwen3TTSTokenizer.from_pretrained(str(custom_voice_model / "speech_tokenizer"))


@pytest.mark.parametrize(("first", "chunk", "seed"), [(1, 4, 1), (2, 3, 2)])
def test_streamed_audio_equals_the_one_shot_decode_of_the_same_codes(
    make_backend: BackendFactory,
    custom_voice_model: Path,
    codec: Qwen3TTSTokenizer,
    speak: Speaker,
    first: int,
    chunk: int,
    seed: int,
) -> None:
    backend = make_backend(custom_voice_model, qwen_first_chunk_frames=first, qwen_chunk_frames=chunk)
    sequence = backend.open(_request("Hi. Yo.", seed), backend.voices()[0])
    [steps] = speak(backend, [sequence])
    streamed = np.concatenate(steps).astype(np.int32)
    codes = torch.from_numpy(np.stack(sequence.codes))
    assert len(codes) <= 300, "beyond 300 frames the one-shot decode itself works in chunks"
    [one_shot], rate = codec.decode({"audio_codes": codes})
    reference = np.round(np.clip(one_shot, -1, 1) * 32767).astype(np.int32)
    assert rate == 24000
    assert len(streamed) == len(reference) == len(codes) * SAMPLES_PER_FRAME
    assert np.sqrt(np.mean(reference.astype(np.float64) ** 2)) > 1000, "the tiny codec must make a signal"
    assert np.abs(streamed - reference).max() <= STREAM_TOLERANCE


def test_each_segment_runs_to_its_adaptive_frame_budget(backend: QwenBackend, speak: Speaker) -> None:
    sequence = backend.open(_request("Hi. Yo."), backend.voices()[0])
    [steps] = speak(backend, [sequence])
    per_segment = BASE_FRAMES + FRAMES_PER_TEXT_TOKEN * len("Hi.")
    assert len(sequence.codes) == 2 * per_segment
    assert sum(len(pcm) for pcm in steps) == 2 * per_segment * SAMPLES_PER_FRAME


def test_frame_budget_is_bounded_by_the_cap_and_the_context() -> None:
    assert frame_budget(3, prompt_length=20, context=2048) == BASE_FRAMES + 3 * FRAMES_PER_TEXT_TOKEN
    assert frame_budget(10_000, prompt_length=20, context=2048) == MAX_SEGMENT_FRAMES
    assert frame_budget(100, prompt_length=2000, context=2048) == 48


def test_end_of_speech_ends_a_segment_early(make_backend: BackendFactory, base_model: Path, speak: Speaker) -> None:
    backend = make_backend(base_model)
    text = "Hello there my friend."
    sequence = backend.open(_request(text), backend.voices()[0])
    [steps] = speak(backend, [sequence])
    assert MIN_SEGMENT_FRAMES <= len(sequence.codes) < BASE_FRAMES + FRAMES_PER_TEXT_TOKEN * len(text)
    assert sum(len(pcm) for pcm in steps) == len(sequence.codes) * SAMPLES_PER_FRAME


def test_text_with_nothing_to_say_finishes_at_once(backend: QwenBackend) -> None:
    sequence = backend.open(_request("..."), backend.voices()[0])
    assert backend.step([sequence]) == [None]
    backend.close(sequence)
