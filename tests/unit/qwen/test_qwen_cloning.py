"""Voice cloning in the backend: prompts computed once, persisted, reloaded; references validated."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("qwen_tts")

import torch
from qwen_tts import Qwen3TTSTokenizer

from media_server.config import Settings
from media_server.engine.backends.qwen.backend import QwenBackend
from media_server.engine.backends.qwen.codec import MAX_CALL_FRAMES
from media_server.engine.types import SamplingParams, SynthesisRequest, Voice
from media_server.errors import InvalidRequest, NotFound, UnknownVoice

if TYPE_CHECKING:
    from tests.unit.qwen.conftest import BackendFactory, Speaker

RATE = 16000
TRANSCRIPT = "A short reference."
SAMPLES_PER_FRAME = 1920


def _reference(seconds: float = 3.0, rate: int = RATE) -> npt.NDArray[np.int16]:
    """A voiced-sounding test signal: a 140 Hz harmonic series with a slow vibrato, and a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (140 * t + 3 * np.sin(2 * np.pi * 5 * t))
    voiced: npt.NDArray[np.float64] = sum(np.sin(k * phase) / k for k in range(1, 8))
    noise = np.random.default_rng(0).normal(0, 0.02, len(t))
    signal: npt.NDArray[np.float64] = 0.25 * voiced / np.abs(voiced).max() + noise
    return (signal * 32767).astype(np.int16)


@pytest.fixture
def cloner(make_backend: BackendFactory, base_model: Path) -> QwenBackend:
    return make_backend(base_model)


def _prompt_files(settings: Settings) -> list[Path]:
    return sorted(Path(settings.voice_cache_dir).rglob("*.pt"))


def _speak_codes(backend: QwenBackend, speak: Speaker, voice: Voice) -> tuple[np.ndarray, np.ndarray]:
    sequence = backend.open(SynthesisRequest(text="Hello.", sampling=SamplingParams(seed=4)), voice)
    [steps] = speak(backend, [sequence])
    return np.stack(sequence.codes), np.concatenate(steps)


def test_a_cloned_voice_is_persisted_and_reloaded_without_recomputing(
    cloner: QwenBackend, make_backend: BackendFactory, base_model: Path, settings: Settings, speak: Speaker
) -> None:
    voice = cloner.create_voice(_reference(), RATE, TRANSCRIPT, "Ada")
    assert voice.id.startswith("clone-") and voice.name == "Ada (Qwen3-TTS)"
    assert voice in cloner.voices() and voice.sample_rate == 24000
    [stored] = _prompt_files(settings)
    written = stored.stat().st_mtime_ns
    codes, audio = _speak_codes(cloner, speak, voice)

    restarted = make_backend(base_model)
    assert voice in restarted.voices()
    assert restarted.create_voice(_reference(), RATE, TRANSCRIPT, "Ada again") == voice
    assert _prompt_files(settings) == [stored] and stored.stat().st_mtime_ns == written
    again_codes, again_audio = _speak_codes(restarted, speak, voice)
    np.testing.assert_array_equal(again_codes, codes)
    np.testing.assert_array_equal(again_audio, audio)


def test_in_context_speech_continues_the_reference_audio(cloner: QwenBackend, base_model: Path, speak: Speaker) -> None:
    reference = _reference(seconds=6.0)
    voice = cloner.create_voice(reference, RATE, TRANSCRIPT, "Ada")
    codes, audio = _speak_codes(cloner, speak, voice)
    codec = Qwen3TTSTokenizer.from_pretrained(str(base_model / "speech_tokenizer"))
    [reference_codes] = codec.encode(reference.astype(np.float32) / 32768, sr=RATE).audio_codes
    assert len(reference_codes) > 2 * MAX_CALL_FRAMES, "the codec is primed with the reference in pieces"
    together = torch.cat([reference_codes, torch.from_numpy(codes)])
    [one_shot], _ = codec.decode({"audio_codes": together})
    expected = np.round(np.clip(one_shot, -1, 1) * 32767)[len(reference_codes) * SAMPLES_PER_FRAME :]
    assert len(audio) == len(expected) == len(codes) * SAMPLES_PER_FRAME
    assert np.abs(audio - expected).max() <= 8


def test_a_timbre_only_clone_is_a_different_voice(cloner: QwenBackend, speak: Speaker) -> None:
    in_context = cloner.create_voice(_reference(), RATE, TRANSCRIPT, "Ada")
    timbre = cloner.create_voice(_reference(), RATE, None, "Ada's timbre")
    assert timbre.id != in_context.id
    assert cloner.create_voice(_reference(), RATE, None, "Ada's timbre again") == timbre
    assert cloner.create_voice(_reference(seconds=2.0), RATE, None, "Another reference") != timbre
    codes, audio = _speak_codes(cloner, speak, timbre)
    assert len(audio) == len(codes) * SAMPLES_PER_FRAME > 0


def test_deleting_a_clone_removes_it_everywhere(cloner: QwenBackend, settings: Settings) -> None:
    voice = cloner.create_voice(_reference(), RATE, TRANSCRIPT, "Ada")
    cloner.delete_voice(voice.id)
    assert voice not in cloner.voices()
    assert _prompt_files(settings) == []
    with pytest.raises(UnknownVoice):
        cloner.open(SynthesisRequest(text="Hi."), voice)
    with pytest.raises(NotFound, match="^voice: no voice"):
        cloner.delete_voice(voice.id)
    with pytest.raises(InvalidRequest, match="^voice: 'default' is built into the model"):
        cloner.delete_voice("default")


@pytest.mark.parametrize(
    ("reference", "rate", "transcript", "name", "message"),
    [
        (_reference(seconds=0.5), RATE, TRANSCRIPT, "Ada", "^reference_audio: 0.50 s of audio; give 1-30 s"),
        (_reference(seconds=31), RATE, TRANSCRIPT, "Ada", "^reference_audio: 31.00 s of audio"),
        (np.zeros(RATE * 2, dtype=np.int16), RATE, TRANSCRIPT, "Ada", "^reference_audio: is silent"),
        (np.stack([_reference(), _reference()], axis=1), RATE, TRANSCRIPT, "Ada", "^reference_audio: must be mono"),
        (_reference().astype(np.int32), RATE, TRANSCRIPT, "Ada", "^reference_audio: samples must be int16"),
        (np.full(RATE * 2, np.nan, dtype=np.float32), RATE, TRANSCRIPT, "Ada", "^reference_audio: contains NaN"),
        (_reference(rate=4000), 4000, TRANSCRIPT, "Ada", "^sample_rate: 4000 Hz is outside 8000-48000 Hz"),
        (_reference(), RATE, "  ", "Ada", "^transcript: must not be empty"),
        (_reference(), RATE, "x" * 1001, "Ada", "^transcript: 1001 characters"),
        (_reference(), RATE, TRANSCRIPT, "", "^name: must be 1-100 characters"),
    ],
)
def test_bad_references_are_refused_naming_the_field(
    cloner: QwenBackend,
    settings: Settings,
    reference: npt.NDArray[np.generic],
    rate: int,
    transcript: str | None,
    name: str,
    message: str,
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        cloner.create_voice(reference, rate, transcript, name)
    assert _prompt_files(settings) == []


def test_only_a_base_checkpoint_clones(backend: QwenBackend) -> None:
    with pytest.raises(InvalidRequest, match="custom_voice checkpoint cannot clone voices"):
        backend.create_voice(_reference(), RATE, TRANSCRIPT, "Ada")
