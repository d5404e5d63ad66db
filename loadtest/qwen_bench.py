"""`python -m loadtest qwen`: Qwen3-TTS at real size, driven through the server's own backend.

For each stream count N, a `QwenBackend` (the server's, loaded by the real
`from_pretrained` path from a random-weight checkpoint) opens N requests of
realistic text at once and is stepped as the engine steps it, every open
sequence in one `step`, until each stream has `frames` codec frames of audio
(random weights rarely say end-of-speech, so every stream gets the same fixed
length and is then closed). Measured per level: time to first audio of each
stream, step time and its phases (code predictor, talker, codec decode and
our own work around them: `timing.py`), each stream's real-time factor and
whether its audio stayed ahead of real time (every chunk arrived before a
listener who started at its first chunk would need it), and peak memory.

With `split=True` a few more frames of the same streams run under
`torch.profiler`, which splits their time into arithmetic and per-call cost
(`OpSplit`): on the CPU, the self time of the operators that do the model's
arithmetic (matrix products, convolutions, attention) against everything else
(Python, dispatch, small element-wise operators: what each of the hundreds of
small calls per frame costs, above all the code predictor's 15 sequential
forwards); on CUDA, the kernels' device time against the wall time (the rest
is the device waiting for the host to launch work).

With `engine=True` the same streams are also served through the engine
(`EngineFront` over `LocalCore`: scheduler, pipeline, delivery to an event
loop, over the same backend), and its cost per frame is compared with driving
the backend directly.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from loadtest.qwen_probe import FRAME_SAMPLES, SAMPLE_RATE, requests, settings_for, stream_frames, warm_up
from loadtest.stats import Distribution, distribution
from media_server.config import Settings
from media_server.engine.backends.qwen.backend import QwenBackend
from media_server.engine.backends.qwen.timing import PHASES
from media_server.engine.core import LocalCore
from media_server.engine.front import EngineFront
from media_server.engine.types import SynthesisRequest, Voice


@dataclass(frozen=True)
class StreamResult:
    ttfa_ms: float
    audio_s: float
    rtf: float
    """Time from the request to its last audio over the audio's duration: below 1 is faster than real time."""
    worst_late_ms: float
    """How late the most late chunk was for a listener who started playing at the first chunk (<= 0: never)."""


@dataclass(frozen=True)
class EngineComparison:
    """The same streams served through the engine, per frame the backend made, against the direct drive."""

    ms_per_frame: float
    direct_ms_per_frame: float
    ratio: float
    cpu_ms_per_frame: float
    """CPU time of this process (the event loop's thread, the engine's and torch's) per frame."""
    direct_cpu_ms_per_frame: float
    cpu_ratio: float
    ttfa_ms: Distribution | None


ARITHMETIC_OPS = ("mm", "conv", "attention")
"""CPU operators whose self time is the model's arithmetic (name contains one of these)."""
SPLIT_FRAMES = 8


@dataclass(frozen=True)
class OpSplit:
    """Per frame of the profiled steps: wall time, the arithmetic's share of it, and operator calls."""

    frames: int
    ms_per_frame: float
    """Under the profiler, which adds a few microseconds per operator call."""
    arithmetic_ms_per_frame: float
    other_ms_per_frame: float
    op_calls_per_frame: float
    basis: str


@dataclass
class LevelResult:
    streams: int
    slots: int
    frames: int
    steps: int
    ttfa_ms: Distribution | None
    step_ms: Distribution | None
    phase_ms_per_step: dict[str, float]
    ms_per_frame: float
    """Wall time of the level over the frames all its streams made."""
    cpu_ms_per_frame: float
    """CPU time of this process (all its threads) over the frames: what other work on the machine cannot inflate."""
    rtf: Distribution | None
    all_ahead: bool
    worst_late_ms: float
    aggregate_x_realtime: float
    peak_memory_mib: float
    memory_kind: str
    device_allocations: int | None
    """New device memory segments allocated during the measured steps (CUDA): 0 means the caches and the
    allocator's pool were all in place after warm-up."""
    engine: EngineComparison | None = None
    split: OpSplit | None = None
    streams_detail: list[StreamResult] = field(default_factory=list)


class _Memory:
    """Peak memory of the level: the device allocator's peak on CUDA, the process's peak RSS otherwise."""

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self.kind = "cuda max allocated" if self._cuda else "process peak RSS"
        self._segments = 0
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._segments = _segments()

    def peak_mib(self) -> float:
        if self._cuda:
            return torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def new_segments(self) -> int | None:
        return _segments() - self._segments if self._cuda else None


def _segments() -> int:
    return int(torch.cuda.memory_stats().get("segment.all.allocated", 0))


def drive(backend: QwenBackend, voice: Voice, streams: int, frames: int) -> LevelResult:
    """N streams opened at once and stepped together until each has `frames` frames of audio."""
    memory = _Memory(backend.device)
    backend.take_step_times()
    cpu_s = time.process_time()
    streamed = stream_frames(backend, voice, streams, frames)
    cpu_s = time.process_time() - cpu_s
    times = backend.take_step_times()
    details = [_stream(arrival, total) for arrival, total in zip(streamed.arrivals, streamed.samples, strict=True)]
    audio_s = sum(detail.audio_s for detail in details)
    steps = max(times.steps, 1)
    return LevelResult(
        streams=streams,
        slots=backend.max_batch,
        frames=times.frames,
        steps=times.steps,
        ttfa_ms=distribution([detail.ttfa_ms for detail in details]),
        step_ms=distribution(streamed.step_ms),
        phase_ms_per_step={phase: round(times.seconds[phase] * 1000 / steps, 2) for phase in PHASES},
        ms_per_frame=round(streamed.wall_s * 1000 / max(times.frames, 1), 2),
        cpu_ms_per_frame=round(cpu_s * 1000 / max(times.frames, 1), 2),
        rtf=distribution([detail.rtf for detail in details]),
        all_ahead=all(detail.worst_late_ms <= 0 for detail in details),
        worst_late_ms=max(detail.worst_late_ms for detail in details),
        aggregate_x_realtime=round(audio_s / streamed.wall_s, 2),
        peak_memory_mib=round(memory.peak_mib(), 1),
        memory_kind=memory.kind,
        device_allocations=memory.new_segments(),
        streams_detail=details,
    )


def _stream(arrivals: list[tuple[float, int]], total: int) -> StreamResult:
    """Time to first audio, real-time factor and lateness of one stream from its chunks' arrival times."""
    if not arrivals:
        return StreamResult(ttfa_ms=float("nan"), audio_s=0.0, rtf=float("inf"), worst_late_ms=float("inf"))
    first_s = arrivals[0][0]
    audio_s = total / SAMPLE_RATE
    late_s = max(at - (first_s + before / SAMPLE_RATE) for at, before in arrivals)
    return StreamResult(
        ttfa_ms=round(first_s * 1000, 1),
        audio_s=round(audio_s, 3),
        rtf=round(arrivals[-1][0] / audio_s, 3),
        worst_late_ms=round(late_s * 1000, 1),
    )


def op_split(backend: QwenBackend, voice: Voice, streams: int, frames: int) -> OpSplit:
    """`frames` frames of `streams` streams under `torch.profiler`: arithmetic against per-call cost."""
    from torch.profiler import ProfilerActivity, profile

    cuda = backend.device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities, acc_events=True) as profiler:
        streamed = stream_frames(backend, voice, streams, frames)
    made = max(sum(streamed.samples) / FRAME_SAMPLES, 1)
    events = profiler.key_averages()
    if cuda:
        arithmetic_us = sum(event.self_device_time_total for event in events)
        basis = "CUDA kernels' device time"
    else:
        arithmetic_us = sum(
            event.self_cpu_time_total for event in events if any(op in event.key for op in ARITHMETIC_OPS)
        )
        basis = "self CPU time of " + ", ".join(ARITHMETIC_OPS) + " operators"
    wall_ms = streamed.wall_s * 1000 / made
    arithmetic_ms = min(arithmetic_us / 1000 / made, wall_ms)
    calls = sum(event.count for event in events if event.key.startswith("aten::"))
    return OpSplit(
        frames=round(made),
        ms_per_frame=round(wall_ms, 2),
        arithmetic_ms_per_frame=round(arithmetic_ms, 2),
        other_ms_per_frame=round(wall_ms - arithmetic_ms, 2),
        op_calls_per_frame=round(calls / made, 1),
        basis=basis,
    )


@dataclass(frozen=True)
class Served:
    wall_s: float
    cpu_s: float
    frames: int
    ttfa_ms: list[float]


async def serve(settings: Settings, backend: QwenBackend, streams: int, frames: int) -> Served:
    """The same streams through the engine (front, core, scheduler, pipeline)."""
    front = EngineFront(LocalCore(settings, backend), settings)
    await front.start()
    try:
        voice = front.voices()[0]
        backend.take_step_times()
        started = time.perf_counter()
        cpu_s = time.process_time()

        async def listen(request: SynthesisRequest) -> float:
            first = float("nan")
            samples = 0
            async with front.stream(request) as chunks:
                async for chunk in chunks:
                    if samples == 0:
                        first = (time.perf_counter() - started) * 1000
                    samples += len(chunk.pcm)
                    if samples >= frames * FRAME_SAMPLES:
                        break
            return first

        ttfas = await asyncio.gather(*(listen(request) for request in requests(streams, voice)))
        served = Served(
            wall_s=time.perf_counter() - started,
            cpu_s=time.process_time() - cpu_s,
            frames=backend.take_step_times().frames,
            ttfa_ms=list(ttfas),
        )
    finally:
        await front.stop()
    return served


def _levels(settings: Settings, counts: Sequence[int], frames: int, engine: bool, split: bool) -> list[LevelResult]:
    """Each stream count on one freshly loaded backend."""
    backend = QwenBackend(settings)
    backend.load()
    try:
        voice = backend.voices()[0]
        levels = []
        for streams in counts:
            warm_up(backend, voice, streams)
            level = drive(backend, voice, streams, frames)
            if split:
                level.split = op_split(backend, voice, streams, min(frames, SPLIT_FRAMES))
            if engine:
                served = asyncio.run(serve(settings, backend, streams, frames))
                ms_per_frame = served.wall_s * 1000 / max(served.frames, 1)
                cpu_ms_per_frame = served.cpu_s * 1000 / max(served.frames, 1)
                level.engine = EngineComparison(
                    ms_per_frame=round(ms_per_frame, 2),
                    direct_ms_per_frame=level.ms_per_frame,
                    ratio=round(ms_per_frame / level.ms_per_frame, 3),
                    cpu_ms_per_frame=round(cpu_ms_per_frame, 2),
                    direct_cpu_ms_per_frame=level.cpu_ms_per_frame,
                    cpu_ratio=round(cpu_ms_per_frame / max(level.cpu_ms_per_frame, 1e-9), 3),
                    ttfa_ms=distribution(served.ttfa_ms),
                )
            levels.append(level)
    finally:
        backend.unload()
        del backend
        gc.collect()
    return levels


def run(
    model: Path,
    device: str,
    streams: Sequence[int],
    frames: int,
    env: dict[str, str] | None = None,
    slots: int | None = None,
    engine: bool = False,
    split: bool = False,
) -> list[LevelResult]:
    """Every level: with `slots`, all on one backend of that many slots; else each on its own, slots = streams."""
    env = env or {}
    if slots is not None:
        return _levels(settings_for(model, device, slots, env), streams, frames, engine, split)
    return [
        level
        for count in streams
        for level in _levels(settings_for(model, device, count, env), [count], frames, engine, split)
    ]


def table(levels: Sequence[LevelResult], label: str = "") -> str:
    """The levels as a Markdown table (milliseconds; RTF: compute time over audio time, below 1 is faster)."""
    head = (
        "| run | streams | slots | TTFA p50 / max | step p50 / p95 | predictor | talker | codec | ours* "
        "| ms / frame (CPU) | RTF worst | all ahead | x real time | peak MiB | engine / direct (CPU) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for level in levels:
        phases = level.phase_ms_per_step
        ours = sum(phases[phase] for phase in ("prompt", "inputs", "frames", "results"))
        ttfa = f"{_p(level.ttfa_ms, 'p50')} / {_p(level.ttfa_ms, 'max')}"
        step = f"{_p(level.step_ms, 'p50')} / {_p(level.step_ms, 'p95')}"
        engine = f"{level.engine.ratio:.2f}x ({level.engine.cpu_ratio:.2f}x)" if level.engine else "-"
        rtf = _p(level.rtf, "max", digits=2)
        lines.append(
            f"| {label} | {level.streams} | {level.slots} | {ttfa} | {step} | {phases['predictor']:.1f} "
            f"| {phases['talker'] + phases['prefill']:.1f} | {phases['codec']:.1f} | {ours:.1f} "
            f"| {level.ms_per_frame:.1f} ({level.cpu_ms_per_frame:.1f}) | {rtf} | {'yes' if level.all_ahead else 'no'} "
            f"| {level.aggregate_x_realtime:.1f} | {level.peak_memory_mib:.0f} | {engine} |"
        )
    for level in levels:
        if level.split is not None:
            split = level.split
            share = split.arithmetic_ms_per_frame / max(split.ms_per_frame, 1e-9)
            lines.append(
                f"\n{label} x{level.streams} under the profiler, {split.frames} frames: {split.ms_per_frame:.1f} ms "
                f"a frame, {split.arithmetic_ms_per_frame:.1f} ms arithmetic ({share:.0%}; {split.basis}), "
                f"{split.other_ms_per_frame:.1f} ms per-call cost, {split.op_calls_per_frame:.0f} operator calls"
            )
    return "\n".join(lines)


def _p(value: Distribution | None, key: str, digits: int = 0) -> str:
    return "-" if value is None else f"{getattr(value, key):.{digits}f}"
