"""Our step loop against qwen_tts's own generate-then-decode, on greedy tiny checkpoints.

With greedy decoding in both the talker and the code predictor, the backend's
prompts, per-frame loop and streaming codec must give the audio that
`Qwen3TTSModel.generate_*` gives for the same text: any difference in how a
prompt is built, a frame sampled or audio decoded would change it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("qwen_tts")

import torch
from qwen_tts import Qwen3TTSModel

from media_server.engine.backends.qwen.sequence import BASE_FRAMES, FRAMES_PER_TEXT_TOKEN
from media_server.engine.types import SamplingParams, SynthesisRequest
from tests.qwen_checkpoint import ModelKind, build_checkpoint

if TYPE_CHECKING:
    from tests.unit.qwen.conftest import BackendFactory, Speaker

TEXT = "Hi."
INSTRUCTIONS = "A calm, low voice."
TRANSCRIPT = "A short reference."
RATE = 16000
TOLERANCE = 8
"""int16 steps, as for streamed against one-shot decoding (measured here: at most 2)."""
# Upstream counts the token that would start the next frame against max_new_tokens.
MAX_NEW_TOKENS = BASE_FRAMES + FRAMES_PER_TEXT_TOKEN * len(TEXT) + 1


def _reference() -> npt.NDArray[np.float32]:
    t = np.arange(RATE * 3) / RATE
    noise = np.random.default_rng(0).normal(0, 0.01, len(t))
    return (0.3 * np.sin(2 * np.pi * 140 * t) + noise).astype(np.float32)


@pytest.mark.parametrize(
    ("kind", "codebook_size", "language", "detail"),
    [
        ("custom_voice", 1024, "English", "aiden"),
        ("custom_voice", 1024, "Auto", "dylan"),
        ("voice_design", 8, "English", INSTRUCTIONS),
        ("base", 8, "English", TRANSCRIPT),
        ("base", 8, "Auto", None),
    ],
    ids=["speaker", "dialect-speaker", "designed", "in-context-clone", "timbre-clone"],
)
def test_streamed_audio_matches_upstream_generation(
    make_backend: BackendFactory,
    speak: Speaker,
    tmp_path_factory: pytest.TempPathFactory,
    kind: ModelKind,
    codebook_size: int,
    language: str,
    detail: str | None,
) -> None:
    """`detail` is the speaker, the voice description, or the clone's transcript."""
    model = build_checkpoint(tmp_path_factory.mktemp(f"greedy_{kind}"), kind, codebook_size, greedy=True)
    upstream = Qwen3TTSModel.from_pretrained(str(model), dtype=torch.float32, attn_implementation="sdpa")
    backend = make_backend(model)
    instructions = None
    if kind == "custom_voice":
        voice = next(voice for voice in backend.voices() if voice.id == detail)
        wavs, _ = upstream.generate_custom_voice(TEXT, speaker=detail, language=language, max_new_tokens=MAX_NEW_TOKENS)
    elif kind == "voice_design":
        voice, instructions = backend.voices()[0], detail
        wavs, _ = upstream.generate_voice_design(
            TEXT, instruct=detail, language=language, max_new_tokens=MAX_NEW_TOKENS
        )
    else:
        voice = backend.create_voice(_reference(), RATE, detail, "Ada")
        prompt = upstream.create_voice_clone_prompt(
            ref_audio=(_reference(), RATE), ref_text=detail, x_vector_only_mode=detail is None
        )
        wavs, _ = upstream.generate_voice_clone(
            TEXT, language=language, voice_clone_prompt=prompt, max_new_tokens=MAX_NEW_TOKENS
        )
    request = SynthesisRequest(
        text=TEXT, language=language, instructions=instructions, sampling=SamplingParams(temperature=0.0)
    )
    [steps] = speak(backend, [backend.open(request, voice)])
    ours = np.concatenate(steps).astype(np.int32)
    theirs = np.round(np.clip(wavs[0], -1, 1) * 32767).astype(np.int32)
    assert len(ours) == len(theirs) > 0
    assert np.abs(ours - theirs).max() <= TOLERANCE
