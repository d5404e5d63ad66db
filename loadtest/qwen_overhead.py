"""`python -m loadtest qwen-overhead`: our own per-frame work in the Qwen3-TTS step, before and after, in one run.

The time of a step is the model's (its decoder layers, heads, embeddings and
codec modules: code under `transformers/`, `qwen_tts/` and `torch/nn/modules/`)
plus ours around it (masks, cache writes, sampling, per-step tensors, codec
state, bookkeeping). On a tiny checkpoint the model's arithmetic is negligible,
so what is left is per-call cost, and ours shows plainly.

Each round runs `loadtest.qwen_probe` (one stream, driven directly) once per
revision in a fresh process, alternately, so both see the same noisy machine:
the working tree, and `--against` (a git revision whose `media_server/` is
exported to a temporary folder put first on `PYTHONPATH`). py-spy samples each
process; a sample under `QwenBackend.step` is the model's when its stack
passes through the model's modules (the packages above), else ours, and our
share of the CPU time per frame (one torch thread, the best round: wall time on
a shared machine measures the other work as much as ours) is our overhead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from loadtest.profiling import record_command

REPO = Path(__file__).resolve().parents[1]
MODEL_PATHS = ("(transformers/", "(qwen_tts/", "(torch/nn/modules/")
"""Frames in these packages are the model's work (its modules' forward code)."""
PROFILE_RATE_HZ = 250
STEP_FRAME = "step (media_server/engine/backends/qwen/backend.py"


@dataclass(frozen=True)
class RevisionResult:
    revision: str
    ms_per_frame: float
    """The best round's wall time per frame of one stream."""
    cpu_ms_per_frame: float
    """The best round's CPU time per frame (one torch thread): what other work on the machine cannot inflate."""
    rounds_cpu_ms_per_frame: list[float]
    ours_share: float
    """Share of the step's samples in our code rather than the model's."""
    ours_ms_per_frame: float
    """Our share of the CPU time per frame."""
    model_ms_per_frame: float
    samples: int


@dataclass(frozen=True)
class OverheadResult:
    model: str
    frames: int
    before: RevisionResult
    after: RevisionResult
    ours_cut: float
    """1 - ours after / ours before."""


def split_samples(profile: Path) -> tuple[int, int]:
    """Samples under the backend's `step`: (ours, the model's)."""
    ours = model = 0
    for line in profile.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(STEP_FRAME in frame for frame in frames):
            continue
        if any(path in frame for frame in frames for path in MODEL_PATHS):
            model += int(count)
        else:
            ours += int(count)
    return ours, model


def export_tree(revision: str, into: Path) -> Path:
    """`media_server/` as it is at `revision`, under `into`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "media_server"], cwd=REPO, capture_output=True, check=True
    ).stdout
    path = into / "tree"
    path.mkdir()
    archive_file = into / "tree.tar"
    archive_file.write_bytes(archive)
    with tarfile.open(archive_file) as tar:
        tar.extractall(path, filter="data")
    return path


def launch(tree: Path | None) -> tuple[Path, dict[str, str]]:
    """Working directory and environment of a process that imports `media_server` from `tree` (None: this one).

    `python -m` puts its working directory first on `sys.path`, before `PYTHONPATH`: the
    older revision's process therefore runs in `tree`, and finds `loadtest` through `PYTHONPATH`.
    """
    return tree or REPO, os.environ | {"PYTHONPATH": str(REPO)}


def _probe(tree: Path | None, model: Path, frames: int, rounds: int, profile: Path) -> list[tuple[float, float]]:
    """Wall and CPU milliseconds per frame of each round of one probe process."""
    cwd, env = launch(tree)
    probe = [sys.executable, "-m", "loadtest.qwen_probe", str(model), "--frames", str(frames), "--rounds", str(rounds)]
    command = [*record_command(profile, PROFILE_RATE_HZ), "--", *probe]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed ({done.returncode}): {' '.join(probe)}\n{done.stderr[-2000:]}")
    output = done.stdout
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [(float(line["ms_per_frame"]), float(line["cpu_ms_per_frame"])) for line in lines]


def _summary(revision: str, times: list[tuple[float, float]], profiles: list[Path]) -> RevisionResult:
    ours = model = 0
    for profile in profiles:
        counted = split_samples(profile)
        ours, model = ours + counted[0], model + counted[1]
    share = ours / max(ours + model, 1)
    per_frame = min(cpu for _, cpu in times)
    return RevisionResult(
        revision=revision,
        ms_per_frame=round(min(wall for wall, _ in times), 2),
        cpu_ms_per_frame=round(per_frame, 2),
        rounds_cpu_ms_per_frame=[round(cpu, 2) for _, cpu in times],
        ours_share=round(share, 3),
        ours_ms_per_frame=round(per_frame * share, 2),
        model_ms_per_frame=round(per_frame * (1 - share), 2),
        samples=ours + model,
    )


def compare(model: Path, against: str, frames: int, rounds: int, out: Path) -> OverheadResult:
    """`rounds` alternating probe runs of `against` and of the working tree; profiles are kept under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, tuple[list[tuple[float, float]], list[Path]]] = {"before": ([], []), "after": ([], [])}
    with tempfile.TemporaryDirectory() as scratch:
        tree = export_tree(against, Path(scratch))
        for turn in range(rounds):
            for name, source in (("before", tree), ("after", None)):
                profile = out / f"qwen-overhead-{name}-{turn}.txt"
                times, profiles = runs[name]
                times.extend(_probe(source, model, frames, 3, profile))
                profiles.append(profile)
    before = _summary(against, *runs["before"])
    after = _summary("working tree", *runs["after"])
    return OverheadResult(
        model=str(model),
        frames=frames,
        before=before,
        after=after,
        ours_cut=round(1 - after.ours_ms_per_frame / before.ours_ms_per_frame, 3),
    )


def table(result: OverheadResult) -> str:
    lines = [
        "| code | wall ms / frame | CPU ms / frame (rounds) | ours | ours CPU ms / frame | model CPU ms / frame |",
        "|---|---|---|---|---|---|",
    ]
    for row in (result.before, result.after):
        rounds = ", ".join(f"{value:.1f}" for value in row.rounds_cpu_ms_per_frame)
        lines.append(
            f"| {row.revision} | {row.ms_per_frame:.2f} | {row.cpu_ms_per_frame:.2f} ({rounds}) | {row.ours_share:.0%} "
            f"| {row.ours_ms_per_frame:.2f} | {row.model_ms_per_frame:.2f} |"
        )
    lines.append(f"\nOur per-frame overhead cut by {result.ours_cut:.0%}.")
    return "\n".join(lines)
