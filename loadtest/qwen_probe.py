"""The direct drive of a Qwen3-TTS backend through the Backend protocol alone (open, step, close).

`python -m loadtest qwen` builds on `stream_frames`; `python -m loadtest
qwen-overhead` also runs this module as a program against an older revision of
`media_server` (put first on `PYTHONPATH`), so it uses nothing of the backend
but what every revision has: `QwenBackend(settings)`, `load`, `voices`,
`open`, `step`, `close`. Run as a program it prints one JSON line per round:
the wall and CPU time per frame of one stream driven for `frames` frames.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.texts import UTTERANCES
from media_server.config import Settings
from media_server.engine.types import Priority, SamplingParams, SynthesisRequest, Voice

FRAME_SAMPLES = 1920
"""24 kHz samples per 12.5 Hz codec frame."""
SAMPLE_RATE = 24000
LANGUAGE = "en"
WARMUP_STEPS = 5


def bench_text(index: int) -> str:
    """A realistic paragraph per stream, several sentences long so that no stream runs out of text."""
    turns = len(UTTERANCES)
    return " ".join(UTTERANCES[(index + k) % turns] for k in range(6))


def requests(count: int, voice: Voice) -> list[SynthesisRequest]:
    """One real-time request per stream, each with its own text and seed."""
    return [
        SynthesisRequest(
            text=bench_text(n),
            voice=voice.id,
            language=LANGUAGE,
            priority=Priority.REALTIME,
            sampling=SamplingParams(seed=n),
        )
        for n in range(count)
    ]


def settings_for(model: Path, device: str, slots: int, env: dict[str, str]) -> Settings:
    """The server's settings for a run, from its environment variables as the server reads them."""
    values = {
        "TTS_BACKEND": "qwen",
        "QWEN_MODEL": str(model),
        "QWEN_DEVICE": device,
        "QWEN_MAX_BATCH": str(slots),
        "QWEN_WARMUP": "false",
        "ENGINE_WORKERS": "1",
        "AUDIO_CACHE_BYTES": "0",
        "TTFA_BUDGET_MS": "0",
    }
    return Settings.from_env(values | env)


@dataclass
class Streamed:
    """What N streams driven together got: each stream's chunks (arrival s, samples before it), step times."""

    arrivals: list[list[tuple[float, int]]]
    samples: list[int]
    step_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def stream_frames(backend: Any, voice: Voice, streams: int, frames: int) -> Streamed:
    """Open `streams` requests at once and step them together until each has `frames` frames of audio."""
    wanted = frames * FRAME_SAMPLES
    result = Streamed(arrivals=[[] for _ in range(streams)], samples=[0] * streams)
    started = time.perf_counter()
    open_ = {backend.open(request, voice): index for index, request in enumerate(requests(streams, voice))}
    while open_:
        active = list(open_)
        before = time.perf_counter()
        made = backend.step(active)
        now = time.perf_counter()
        result.step_ms.append((now - before) * 1000)
        for sequence, pcm in zip(active, made, strict=True):
            index = open_[sequence]
            if pcm is not None and len(pcm):
                result.arrivals[index].append((now - started, result.samples[index]))
                result.samples[index] += len(pcm)
            if pcm is None or result.samples[index] >= wanted:
                backend.close(sequence)
                del open_[sequence]
    result.wall_s = time.perf_counter() - started
    return result


def warm_up(backend: Any, voice: Voice, streams: int) -> None:
    """A few untimed steps at this batch size: lazy initialization and kernel choice happen here."""
    sequences = [backend.open(request, voice) for request in requests(streams, voice)]
    for _ in range(WARMUP_STEPS):
        backend.step(sequences)
    for sequence in sequences:
        backend.close(sequence)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    import torch

    from media_server.engine.backends.qwen.backend import QwenBackend

    torch.set_num_threads(args.threads)
    backend = QwenBackend(settings_for(args.model, "cpu", 1, {}))
    backend.load()
    voice = backend.voices()[0]
    warm_up(backend, voice, 1)
    for _ in range(args.rounds):
        cpu_s = time.process_time()
        streamed = stream_frames(backend, voice, 1, args.frames)
        cpu_s = time.process_time() - cpu_s
        made = streamed.samples[0] / FRAME_SAMPLES
        line = {"ms_per_frame": streamed.wall_s * 1000 / made, "cpu_ms_per_frame": cpu_s * 1000 / made, "frames": made}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
