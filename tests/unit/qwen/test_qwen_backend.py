"""Loading a tiny Qwen3-TTS checkpoint through the real from_pretrained path: voices, languages, settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("qwen_tts")

from media_server.config import Settings
from media_server.engine.backends import create_backend
from media_server.engine.backends.qwen.backend import QwenBackend
from media_server.engine.types import SamplingParams, SynthesisRequest, Voice
from media_server.errors import ConfigError, InvalidRequest
from tests.qwen_checkpoint import SPEAKERS

if TYPE_CHECKING:
    from tests.unit.qwen.conftest import BackendFactory, Speaker


def test_create_backend_builds_the_qwen_backend(custom_voice_model: Path) -> None:
    backend = create_backend(Settings(tts_backend="qwen", qwen_model=str(custom_voice_model)))
    assert isinstance(backend, QwenBackend)
    assert backend.max_batch == backend.max_sequences == Settings().qwen_max_batch
    assert backend.native_speed is False


def test_custom_voice_checkpoint_lists_its_speakers(backend: QwenBackend) -> None:
    voices = backend.voices()
    assert [voice.id for voice in voices] == sorted(SPEAKERS)
    for voice in voices:
        assert voice.backend == "qwen"
        assert voice.sample_rate == 24000
        assert voice.languages == ("zh", "en", "de")


@pytest.mark.parametrize(("model", "voice_id"), [("voice_design_model", "designed"), ("base_model", "default")])
def test_other_checkpoints_offer_one_builtin_voice(
    make_backend: BackendFactory, request: pytest.FixtureRequest, model: str, voice_id: str
) -> None:
    backend = make_backend(request.getfixturevalue(model))
    assert [voice.id for voice in backend.voices()] == [voice_id]


@pytest.mark.parametrize("language", ["auto", "en", "en-US", "English", "zh", "chinese", "DE"])
def test_languages_by_name_or_code(backend: QwenBackend, language: str) -> None:
    voice = backend.voices()[0]
    sequence = backend.open(SynthesisRequest(text="Hi.", language=language), voice)
    backend.close(sequence)


def test_an_unsupported_language_is_refused_naming_the_field(backend: QwenBackend) -> None:
    with pytest.raises(InvalidRequest, match="^language: 'fr' is not supported .* auto, zh, en, de"):
        backend.open(SynthesisRequest(text="Bonjour.", language="fr"), backend.voices()[0])


def test_a_voice_of_another_backend_is_refused(backend: QwenBackend) -> None:
    foreign = Voice("joe", "Joe", "piper", ("en",), 22050)
    with pytest.raises(InvalidRequest, match="^voice: 'joe'"):
        backend.open(SynthesisRequest(text="Hi."), foreign)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"qwen_model": None}, "^QWEN_MODEL: set it"),
        ({"qwen_quant": "fp8"}, "^QWEN_QUANT=fp8: needs a CUDA GPU"),
    ],
)
def test_settings_the_machine_cannot_serve_are_config_errors_at_load(
    settings: Settings, overrides: dict[str, Any], message: str
) -> None:
    backend = QwenBackend(replace(settings, **{"qwen_model": "unused", **overrides}))
    with pytest.raises(ConfigError, match=message):
        backend.load()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"qwen_device": "tpu"}, "^QWEN_DEVICE='tpu': expected one of auto, cpu, cuda"),
        ({"qwen_quant": "int4"}, "^QWEN_QUANT='int4': expected one of none, int8, fp8"),
        ({"qwen_chunk_frames": 0}, r"^QWEN_CHUNK_FRAMES=0: must be in \[1, 32\]"),
        ({"qwen_max_batch": 0}, r"^QWEN_MAX_BATCH=0: must be in \[1, 256\]"),
    ],
)
def test_settings_out_of_their_range_are_refused_when_built(
    settings: Settings, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(settings, **overrides)


def test_a_directory_without_a_checkpoint_is_a_config_error(settings: Settings, tmp_path: Path) -> None:
    backend = QwenBackend(replace(settings, qwen_model=str(tmp_path)))
    with pytest.raises(ConfigError, match="^QWEN_MODEL=.*: cannot load the checkpoint"):
        backend.load()


def test_warm_up_runs_at_load_and_leaves_every_slot_free(make_backend: BackendFactory, base_model: Path) -> None:
    backend = make_backend(base_model, qwen_warmup=True, qwen_max_batch=2)
    sequences = [backend.open(SynthesisRequest(text="Hi."), backend.voices()[0]) for _ in range(2)]
    assert sorted(sequence.slot for sequence in sequences) == [0, 1]


def test_unload_drops_the_model_and_load_brings_it_back(backend: QwenBackend, speak: Speaker) -> None:
    voices = backend.voices()
    backend.unload()
    assert backend.voices() == ()
    with pytest.raises(RuntimeError, match="not loaded"):
        backend.open(SynthesisRequest(text="Hi."), voices[0])
    backend.load()
    assert backend.voices() == voices
    [steps] = speak(backend, [backend.open(SynthesisRequest(text="Hi."), voices[0])])
    assert sum(len(pcm) for pcm in steps) > 0


def test_int8_quantization_keeps_the_step_loop_working(
    make_backend: BackendFactory, custom_voice_model: Path, speak: Speaker
) -> None:
    pytest.importorskip("torchao")
    backend = make_backend(custom_voice_model, qwen_quant="int8")
    sequence = backend.open(SynthesisRequest(text="Hi."), backend.voices()[0])
    [steps] = speak(backend, [sequence])
    assert sum(len(pcm) for pcm in steps) == len(sequence.codes) * 1920 > 0


def test_instructions_describe_a_designed_voice(
    make_backend: BackendFactory, voice_design_model: Path, speak: Speaker
) -> None:
    backend = make_backend(voice_design_model)

    def codes(instructions: str | None) -> np.ndarray:
        request = SynthesisRequest(text="Hi.", instructions=instructions, sampling=SamplingParams(seed=1))
        sequence = backend.open(request, backend.voices()[0])
        speak(backend, [sequence])
        return np.stack(sequence.codes)

    calm = codes("A calm, low voice.")
    np.testing.assert_array_equal(codes("A calm, low voice."), calm)
    assert not np.array_equal(codes("A bright, quick voice."), calm)


def test_each_segments_words_are_estimated_in_its_audio_once_it_ends(backend: QwenBackend) -> None:
    text = "Good morning, everyone. The meeting starts at nine."
    sequence = backend.open(SynthesisRequest(text=text, sampling=SamplingParams(seed=1)), backend.voices()[0])
    total = 0
    spans = []
    while (pcm := backend.step([sequence])[0]) is not None:
        total += len(pcm)
        spans += backend.words(sequence)
    spans += backend.words(sequence)
    assert [text[span.start_char : span.end_char] for span in spans] == text.split()
    assert all(span.estimated for span in spans)
    assert all(a.end_sample <= b.start_sample for a, b in zip(spans, spans[1:], strict=False))
    assert spans[0].start_sample == 0 and spans[-1].end_sample <= total
