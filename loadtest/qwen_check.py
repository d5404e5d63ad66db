"""`python -m loadtest qwen-check`: the one-shot GPU check of the Qwen3-TTS backend, in one table and one JSON.

On a CUDA machine (`loadtest/gpu_check.sh` installs what it needs from the lock
file and runs this) it builds the 0.6B and 1.7B Base models from their released
configurations with random weights, then, most telling first and within a time
budget (what does not fit is listed as skipped, never silently dropped):
- our backend with the default settings at 1, 8, 32 and 64 streams, each model;
- faster-qwen3-tts (one stream, CUDA graphs) and faster-qwen3-tts-batch (a fixed
  batch of 32) on the same weights: the anchor;
- bf16 against fp32 codes on a short greedy run (0.6B);
- `QWEN_COMPILE` (CUDA graphs through torch.compile), `QWEN_QUANT=int8` and
  `QWEN_QUANT=fp8`, at 1 and 32 streams.
Each row says whether the targets hold: first audio within 100 ms for one
stream of the 0.6B model; every stream ahead of real time; after warm-up, no
new device memory segment during the measured steps (the slot caches and the
allocator's pool are the pre-allocated memory).

`--reduced CHECKPOINT` is the same machinery on the CPU with that checkpoint
(a tiny one, in the test suite, which runs `gpu_check.sh` itself so), at 1 and 2 streams and a few
frames, so that the check cannot rot while no GPU is at hand; what only a GPU
can run is listed as skipped with its reason.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loadtest import qwen_anchor, qwen_bench
from loadtest.qwen_checkpoint import build_released, greedy_variant
from loadtest.qwen_probe import requests, settings_for
from media_server.engine.backends.qwen.backend import QwenBackend

REPO = Path(__file__).resolve().parents[1]
RELEASES = REPO.parent / "shared" / "qwen3-tts"
MODELS = ("0.6B-Base", "1.7B-Base")
STREAMS = (1, 8, 32, 64)
FRAMES = 50
"""4 s of audio per stream."""
CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "compile": {"QWEN_COMPILE": "true", "QWEN_WARMUP": "true"},
    "int8": {"QWEN_QUANT": "int8"},
    "fp8": {"QWEN_QUANT": "fp8"},
}
TTFA_TARGET_MS = 100.0
DTYPE_FRAMES = 12
ANCHOR_BATCH = 32


@dataclass
class Row:
    """One run of the check: what ran, its figures or why it did not run."""

    engine: str
    model: str
    config: str
    streams: int
    status: str = "ok"
    """ok, failed (with `detail`), or skipped (with `detail`)."""
    detail: str = ""
    ttfa_ms: float | None = None
    step_ms: float | None = None
    rtf_worst: float | None = None
    all_ahead: bool | None = None
    x_realtime: float | None = None
    peak_mib: float | None = None
    new_segments: int | None = None


@dataclass(frozen=True)
class DtypeCheck:
    model: str
    frames: int
    identical_frames: int
    """Frames whose 16 codes are all equal, before the first that differs."""
    code_agreement: float
    first_codebook_agreement: float
    passed: bool


@dataclass
class Check:
    device: str
    budget_s: float
    rows: list[Row] = field(default_factory=list)
    dtype: DtypeCheck | None = None
    dtype_status: str = "skipped"
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Plan:
    models: dict[str, Path]
    configs: list[tuple[str, str, tuple[int, ...]]]
    """(model, config, stream counts) in the order they run."""
    frames: int
    anchor: bool
    dtype_model: str
    one_load: bool = False
    """All stream counts of a configuration on one backend (slots: the most streams), not one load per count."""


def full_plan(models: dict[str, Path]) -> Plan:
    small, large = MODELS
    return Plan(
        models=models,
        configs=[
            (small, "default", STREAMS),
            (large, "default", STREAMS),
            (large, "compile", (1, 32)),
            (large, "int8", (1, 32)),
            (large, "fp8", (1, 32)),
            (small, "compile", (1,)),
        ],
        frames=FRAMES,
        anchor=True,
        dtype_model=small,
    )


def reduced_plan(checkpoint: Path) -> Plan:
    name = checkpoint.name
    return Plan(
        models={name: checkpoint},
        configs=[(name, config, (1, 2)) for config in CONFIGS],
        frames=6,
        anchor=True,
        dtype_model=name,
        one_load=True,
    )


def _unsupported(config: str, device: str) -> str | None:
    if device != "cuda" and config in ("compile", "fp8"):
        return "needs CUDA" + (" (compute capability 8.9+)" if config == "fp8" else " (CUDA graphs)")
    if config == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        return "needs compute capability 8.9+"
    return None


def _row(model: str, config: str, level: qwen_bench.LevelResult) -> Row:
    return Row(
        engine="ours",
        model=model,
        config=config,
        streams=level.streams,
        ttfa_ms=level.ttfa_ms.p50 if level.ttfa_ms else None,
        step_ms=level.step_ms.p50 if level.step_ms else None,
        rtf_worst=level.rtf.max if level.rtf else None,
        all_ahead=level.all_ahead,
        x_realtime=level.aggregate_x_realtime,
        peak_mib=level.peak_memory_mib,
        new_segments=level.device_allocations,
    )


def dtype_check(model: str, checkpoint: Path, device: str, cache: Path, frames: int) -> DtypeCheck:
    """Greedy codes of one stream in fp32 and in bf16, from the same weights."""
    greedy = greedy_variant(checkpoint, cache)
    codes = []
    for dtype in ("float32", "bfloat16"):
        backend = QwenBackend(settings_for(greedy, device, 1, {"QWEN_DTYPE": dtype}))
        backend.load()
        voice = backend.voices()[0]
        sequence = backend.open(requests(1, voice)[0], voice)
        while len(sequence.codes) < frames and backend.step([sequence])[0] is not None:
            pass
        codes.append(np.stack(sequence.codes[:frames]))
        backend.close(sequence)
        backend.unload()
    count = min(len(codes[0]), len(codes[1]))
    equal = codes[0][:count] == codes[1][:count]
    differing = np.flatnonzero(~equal.all(axis=1))
    identical = int(differing[0]) if len(differing) else count
    return DtypeCheck(
        model=model,
        frames=count,
        identical_frames=identical,
        code_agreement=round(float(equal.mean()), 3),
        first_codebook_agreement=round(float(equal[:, 0].mean()), 3),
        passed=identical >= 1,
    )


def run(plan: Plan, device: str, budget_s: float, cache: Path) -> Check:
    """Everything in `plan`, in order, while the budget lasts."""
    check = Check(device=device, budget_s=budget_s)
    started = time.monotonic()
    last_run_s = 0.0

    def attempt(label: str, work: Callable[[], None]) -> str:
        """Run `work` if the budget leaves room for about as long as the last run took."""
        nonlocal last_run_s
        left = budget_s - (time.monotonic() - started)
        if left < last_run_s:
            return f"skipped: {left:.0f} s of the budget left, the last run took {last_run_s:.0f} s"
        print(f"qwen-check: {label} ({left:.0f} s left)", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            work()
        except Exception as exc:  # one failing configuration must not hide the others' figures
            return f"failed: {type(exc).__name__}: {exc}"[:300]
        finally:
            last_run_s = time.monotonic() - began
        return "ok"

    for model, config, counts in plan.configs:
        reason = _unsupported(config, device)
        if reason is not None:
            check.rows.extend(Row("ours", model, config, n, "skipped", reason) for n in counts)
            continue
        levels: list[qwen_bench.LevelResult] = []

        def ours(
            model: str = model,
            config: str = config,
            counts: tuple[int, ...] = counts,
            levels: list[qwen_bench.LevelResult] = levels,
        ) -> None:
            slots = max(counts) if config == "compile" or plan.one_load else None
            levels.extend(qwen_bench.run(plan.models[model], device, counts, plan.frames, CONFIGS[config], slots))

        status = attempt(f"{model} {config}", ours)
        if status == "ok":
            check.rows.extend(_row(model, config, level) for level in levels)
        else:
            state, _, detail = status.partition(": ")
            check.rows.extend(Row("ours", model, config, n, state, detail) for n in counts)
        if config == "default" and plan.anchor:
            _anchor(check, plan, model, attempt)
    if plan.dtype_model in plan.models:

        def dtypes() -> None:
            checkpoint = plan.models[plan.dtype_model]
            check.dtype = dtype_check(plan.dtype_model, checkpoint, device, cache, DTYPE_FRAMES)

        check.dtype_status = attempt("bf16 vs fp32", dtypes)
    check.elapsed_s = round(time.monotonic() - started, 1)
    return check


def _anchor(check: Check, plan: Plan, model: str, attempt: Callable[[str, Callable[[], None]], str]) -> None:
    """faster-qwen3-tts at one stream and faster-qwen3-tts-batch at `ANCHOR_BATCH`, on `model`'s weights."""
    reason = qwen_anchor.unavailable()
    names = (("faster-qwen3-tts", 1), ("faster-qwen3-tts-batch", ANCHOR_BATCH))
    if reason is not None:
        check.rows.extend(Row(name, model, "default", n, "skipped", reason) for name, n in names)
        return
    found: list[qwen_anchor.AnchorResult] = []

    def work() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            reference = qwen_anchor.reference_wav(Path(scratch) / "reference.wav")
            anchor = qwen_anchor.load(plan.models[model])
            found.append(qwen_anchor.single(anchor, model, reference, plan.frames))
            found.append(qwen_anchor.batched(anchor, model, reference, ANCHOR_BATCH, plan.frames))

    status = attempt(f"{model} anchor", work)
    for result in found:
        check.rows.append(
            Row(result.name, model, "default", result.streams, ttfa_ms=result.ttfa_ms, x_realtime=result.x_realtime)
        )
    if status != "ok":
        state, _, detail = status.partition(": ")
        check.rows.extend(Row(name, model, "default", n, state, detail) for name, n in names[len(found) :])


def models_for(reduced_model: Path | None, cache: Path, releases: Path) -> Plan:
    """The reduced plan on `reduced_model`, else the full one on the 0.6B and 1.7B Base models built under `cache`."""
    if reduced_model is not None:
        return reduced_plan(reduced_model)
    return full_plan({name: build_released(releases / name, cache) for name in MODELS})


def verdicts(check: Check) -> list[str]:
    """The targets, each with whether this run met it (only those its rows can tell)."""
    lines = []
    one = [r for r in check.rows if r.engine == "ours" and r.config == "default" and r.streams == 1 and r.ttfa_ms]
    for row in one:
        met = row.ttfa_ms is not None and row.ttfa_ms <= TTFA_TARGET_MS
        lines.append(f"first audio, 1 stream, {row.model}: {row.ttfa_ms:.0f} ms ({'met' if met else 'MISSED'}: <= 100)")
    for row in check.rows:
        if row.engine == "ours" and row.status == "ok" and row.all_ahead is False:
            lines.append(f"{row.model} {row.config} x{row.streams}: a stream fell behind real time")
        if row.new_segments:
            lines.append(f"{row.model} {row.config} x{row.streams}: {row.new_segments} new device segments")
    return lines


def table(check: Check) -> str:
    head = (
        "| engine | model | config | streams | status | TTFA p50 ms | step p50 ms | RTF worst | all ahead "
        "| x real time | peak MiB | new segments |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in check.rows:
        status = row.status if not row.detail else f"{row.status}: {row.detail}"
        cells = [row.engine, row.model, row.config, str(row.streams), status]
        cells += [_cell(row.ttfa_ms), _cell(row.step_ms, 1), _cell(row.rtf_worst, 2)]
        cells += ["-" if row.all_ahead is None else ("yes" if row.all_ahead else "no")]
        cells += [_cell(row.x_realtime, 1), _cell(row.peak_mib), _cell(row.new_segments)]
        lines.append("| " + " | ".join(cells) + " |")
    if check.dtype is not None:
        d = check.dtype
        lines.append(
            f"\nbf16 vs fp32, greedy, {d.model}: {d.identical_frames} of {d.frames} frames identical before the "
            f"first difference; codes agree {d.code_agreement:.0%}, first codebook {d.first_codebook_agreement:.0%} "
            f"({'pass' if d.passed else 'FAIL'})"
        )
    else:
        lines.append(f"\nbf16 vs fp32: {check.dtype_status}")
    lines.extend(f"- {line}" for line in verdicts(check))
    lines.append(f"\n{check.elapsed_s:.0f} s of a {check.budget_s:.0f} s budget on {check.device}")
    return "\n".join(lines)


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def document_body(check: Check) -> dict[str, Any]:
    return dataclasses.asdict(check) | {"table": table(check), "verdicts": verdicts(check)}
