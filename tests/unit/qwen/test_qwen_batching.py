"""Continuous batching: sequences stepped together, skipped, closed; per-sequence sampling parameters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("qwen_tts")

from media_server.engine.backends.qwen.backend import QwenBackend
from media_server.engine.types import Pcm, SamplingParams, SynthesisRequest, Voice

if TYPE_CHECKING:
    from tests.unit.qwen.conftest import BackendFactory, Speaker

AUDIO_TOLERANCE = 8
"""int16 steps: batched codec convolutions may round differently from single ones (as in streaming)."""


def _request(text: str, **sampling: Any) -> SynthesisRequest:
    return SynthesisRequest(text=text, sampling=SamplingParams(**sampling))


def _alone(backend: QwenBackend, speak: Speaker, request: SynthesisRequest, voice: Voice) -> tuple[np.ndarray, Pcm]:
    sequence = backend.open(request, voice)
    [steps] = speak(backend, [sequence])
    return np.stack(sequence.codes), np.concatenate(steps)


def test_sequences_batched_together_make_what_each_makes_alone(backend: QwenBackend, speak: Speaker) -> None:
    first, second = backend.voices()[:2]
    short, long = _request("Hi.", seed=11), _request("Hello you. Bye.", seed=12)
    alone = [_alone(backend, speak, short, first), _alone(backend, speak, long, second)]
    sequences = [backend.open(short, first), backend.open(long, second)]
    steps = speak(backend, sequences)
    for sequence, audio, (codes, pcm) in zip(sequences, steps, alone, strict=True):
        np.testing.assert_array_equal(np.stack(sequence.codes), codes)
        assert np.abs(np.concatenate(audio).astype(np.int32) - pcm).max() <= AUDIO_TOLERANCE


def test_a_sequence_skipped_for_some_steps_is_unaffected(backend: QwenBackend, speak: Speaker) -> None:
    voice = backend.voices()[0]
    request = _request("Hello you.", seed=5)
    codes, _ = _alone(backend, speak, request, voice)
    skipped, busy = backend.open(request, voice), backend.open(_request("Hi there.", seed=6), voice)
    for _ in range(3):
        backend.step([skipped, busy])
    for _ in range(5):
        backend.step([busy])
    speak(backend, [skipped, busy])
    np.testing.assert_array_equal(np.stack(skipped.codes), codes)


def test_close_frees_the_slot(make_backend: BackendFactory, custom_voice_model: Path) -> None:
    backend = make_backend(custom_voice_model, qwen_max_batch=2)
    voice = backend.voices()[0]
    first, second = backend.open(_request("Hi."), voice), backend.open(_request("Hi."), voice)
    with pytest.raises(RuntimeError, match="all 2 sequence slots are in use"):
        backend.open(_request("Hi."), voice)
    backend.step([first, second])
    backend.close(first)
    backend.close(first)
    third = backend.open(_request("Hi."), voice)
    assert third.slot == first.slot
    with pytest.raises(RuntimeError, match="closed sequence"):
        backend.step([first])
    assert backend.step([second, third]) is not None


def test_the_same_seed_makes_the_same_audio_and_other_seeds_differ(backend: QwenBackend, speak: Speaker) -> None:
    voice = backend.voices()[0]
    codes, pcm = _alone(backend, speak, _request("Hi.", seed=1), voice)
    again, pcm_again = _alone(backend, speak, _request("Hi.", seed=1), voice)
    other, _ = _alone(backend, speak, _request("Hi.", seed=2), voice)
    unseeded = [_alone(backend, speak, _request("Hi."), voice)[0] for _ in range(2)]
    np.testing.assert_array_equal(codes, again)
    np.testing.assert_array_equal(pcm, pcm_again)
    assert not np.array_equal(codes, other)
    assert not np.array_equal(unseeded[0], unseeded[1])


def test_greedy_choices_of_the_first_codebook(backend: QwenBackend, speak: Speaker) -> None:
    voice = backend.voices()[0]
    greedy = _alone(backend, speak, _request("Hi.", temperature=0.0, seed=1), voice)[0]
    other_seed = _alone(backend, speak, _request("Hi.", temperature=0.0, seed=2), voice)[0]
    for narrow in ({"top_k": 1}, {"top_p": 1e-6}):
        np.testing.assert_array_equal(_alone(backend, speak, _request("Hi.", seed=1, **narrow), voice)[0], greedy)
    # The first frame's first code comes from the prompt alone; the code predictor samples the rest.
    assert greedy[0, 0] == other_seed[0, 0]
    assert not np.array_equal(greedy, other_seed)


def test_a_strong_repetition_penalty_stops_repeats(backend: QwenBackend, speak: Speaker) -> None:
    voice = backend.voices()[0]
    # Seeded: the code predictor still samples the other codebooks, which feed the talker's next frame.
    plain = _alone(backend, speak, _request("Hi.", temperature=0.0, repetition_penalty=1.0, seed=4), voice)[0][:, 0]
    penalized = _alone(backend, speak, _request("Hi.", temperature=0.0, repetition_penalty=1e4, seed=4), voice)[0][:, 0]
    assert len(set(plain.tolist())) < len(plain)
    assert len(set(penalized.tolist())) == len(penalized)


def test_a_prompt_prefilled_in_chunks_makes_what_one_prefill_makes(
    make_backend: BackendFactory, custom_voice_model: Path, speak: Speaker
) -> None:
    whole = make_backend(custom_voice_model)
    chunked = make_backend(custom_voice_model, qwen_prefill_chunk=3)
    request = _request("Hello you. Bye.", seed=21)
    codes, _ = _alone(whole, speak, request, whole.voices()[0])
    sequence = chunked.open(request, chunked.voices()[0])
    assert sequence.segments and len(chunked._rt.prompts.build(sequence.segments[0], sequence.conditioning).embeds) > 6
    chunked.step([sequence])
    assert sequence.prefilling and not sequence.codes  # one chunk per step: no frame before the prompt is in
    speak(chunked, [sequence])
    np.testing.assert_array_equal(np.stack(sequence.codes), codes)


def test_a_long_prefill_does_not_hold_back_a_speaking_sequence(
    make_backend: BackendFactory, custom_voice_model: Path
) -> None:
    backend = make_backend(custom_voice_model, qwen_prefill_chunk=2)
    voice = backend.voices()[0]
    speaking = backend.open(_request("Hi there.", seed=1), voice)
    while speaking.prefilling or not speaking.codes:
        backend.step([speaking])
    starting = backend.open(_request("Hello you, this prompt is long.", seed=2), voice)
    frames = len(speaking.codes)
    backend.step([speaking, starting])
    assert starting.prefilling
    assert len(speaking.codes) == frames + 1 or speaking.finished
