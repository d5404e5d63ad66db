"""faster-qwen3-tts (CUDA graphs; PyPI, the `gpucheck` extra) on the same random weights: the anchor to beat.

It drives one stream at a time (`FasterQwen3TTS`), or a fixed batch of them
(`faster-qwen3-tts-batch`'s `BatchedFasterQwen3TTS`, voice cloning only), so
both are run as a Base checkpoint cloning an x-vector from a reference
recording made here (a few seconds of a tone). Each stream is held to the same
fixed frame count as ours (`min_new_tokens = max_new_tokens = frames`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.qwen_probe import FRAME_SAMPLES, SAMPLE_RATE, bench_text

LANGUAGE = "english"
CHUNK_FRAMES = 4
"""Frames per streamed chunk, as our `QWEN_CHUNK_FRAMES` default."""


@dataclass(frozen=True)
class AnchorResult:
    name: str
    model: str
    streams: int
    frames: int
    ttfa_ms: float | None
    """First audio of the first stream (streaming API only)."""
    wall_s: float
    x_realtime: float
    """Audio made per second of wall time, all streams together."""


def unavailable() -> str | None:
    """Why faster-qwen3-tts cannot run here, or None."""
    import torch

    if not torch.cuda.is_available():
        return "needs CUDA (CUDA graphs)"
    try:
        import faster_qwen3_tts  # noqa: F401
    except ImportError:
        return "not installed: pip install -c requirements.lock -e '.[gpucheck]'"
    return None


def reference_wav(path: Path) -> Path:
    """Three seconds of a gliding tone at 24 kHz: something for the speaker encoder to take an x-vector of."""
    import soundfile

    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * (150 + 40 * t) * t)
    soundfile.write(str(path), tone.astype(np.float32), SAMPLE_RATE)
    return path


def load(checkpoint: Path) -> Any:
    import torch
    from faster_qwen3_tts import FasterQwen3TTS

    model = FasterQwen3TTS.from_pretrained(str(checkpoint), device="cuda", dtype=torch.bfloat16)
    model.warmup()
    return model


def single(model: Any, name: str, reference: Path, frames: int) -> AnchorResult:
    """One stream through the streaming API, after one untimed run (graph capture, voice prompt)."""
    result = None
    for _ in range(2):
        started = time.perf_counter()
        first: float | None = None
        samples = 0
        for audio, _, _ in model.generate_voice_clone_streaming(
            text=bench_text(0),
            language=LANGUAGE,
            ref_audio=str(reference),
            xvec_only=True,
            max_new_tokens=frames,
            min_new_tokens=frames,
            chunk_size=CHUNK_FRAMES,
        ):
            if first is None and len(audio):
                first = (time.perf_counter() - started) * 1000
            samples += len(audio)
        wall_s = time.perf_counter() - started
        result = AnchorResult(
            name="faster-qwen3-tts",
            model=name,
            streams=1,
            frames=round(samples / FRAME_SAMPLES),
            ttfa_ms=None if first is None else round(first, 1),
            wall_s=round(wall_s, 3),
            x_realtime=round(samples / SAMPLE_RATE / wall_s, 2),
        )
    assert result is not None
    return result


def batched(model: Any, name: str, reference: Path, streams: int, frames: int) -> AnchorResult:
    """`streams` requests in one fixed batch (faster-qwen3-tts-batch), after one untimed run."""
    from faster_qwen3_tts_batch import BatchedFasterQwen3TTS

    batch = BatchedFasterQwen3TTS(model, max_batch_size=streams)
    requests = [
        {"text": bench_text(n), "language": LANGUAGE, "ref_audio": str(reference), "ref_text": ""}
        for n in range(streams)
    ]
    result = None
    for _ in range(2):
        started = time.perf_counter()
        outputs = batch.generate_voice_clone_batch(
            requests, max_new_tokens=frames, min_new_tokens=frames, xvec_only=True
        )
        wall_s = time.perf_counter() - started
        samples = sum(len(part) for audio, _ in outputs for part in audio)
        result = AnchorResult(
            name="faster-qwen3-tts-batch",
            model=name,
            streams=streams,
            frames=round(samples / FRAME_SAMPLES / streams),
            ttfa_ms=None,
            wall_s=round(wall_s, 3),
            x_realtime=round(samples / SAMPLE_RATE / wall_s, 2),
        )
    assert result is not None
    return result
