"""The Qwen3-TTS benchmark and the one-shot GPU check run end to end on a tiny checkpoint on the CPU.

The GPU check's reduced mode is what keeps `loadtest/gpu_check.sh` from rotting
while no GPU is at hand: the script itself runs (in this virtualenv), with the
same plan, levels, anchor and dtype comparison, and what needs CUDA listed as
skipped. Nothing here asserts a timing target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qwen_tts")

from loadtest.__main__ import main
from loadtest.qwen_check import DTYPE_FRAMES
from loadtest.qwen_checkpoint import greedy_variant
from loadtest.qwen_overhead import export_tree, launch
from tests.qwen_checkpoint import build_checkpoint

ONE_THREAD = ["--threads", "1"]
GPU_CHECK = Path(__file__).resolve().parents[2] / "loadtest" / "gpu_check.sh"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speakers, and a codebook large enough that streams run to their frame count."""
    return build_checkpoint(tmp_path_factory.mktemp("tiny"), "custom_voice", codebook_size=1024)


def _document(path: Path, kind: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert document["kind"] == kind and document["machine"]["logical_cpus"] >= 1
    return document


def test_the_benchmark_drives_the_backend_and_the_engine(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "qwen.json"
    argv = ["qwen", "--model-dir", str(tiny), "--device", "cpu", "--streams", "1", "2", "--frames", "6"]
    assert main([*argv, "--engine", "--split", "--json", str(out), *ONE_THREAD]) == 0

    body = _document(out, "qwen")["qwen"]
    assert [level["streams"] for level in body["levels"]] == [1, 2]
    for level in body["levels"]:
        assert level["slots"] == level["streams"]
        assert level["frames"] >= 6 * level["streams"]
        assert all(stream["audio_s"] >= 6 * 0.08 for stream in level["streams_detail"])
        assert 0 < level["ttfa_ms"]["max"] < 60_000
        assert level["phase_ms_per_step"]["predictor"] > 0 and level["phase_ms_per_step"]["codec"] > 0
        engine = level["engine"]
        assert engine["ratio"] > 0 and engine["cpu_ratio"] > 0 and engine["ttfa_ms"]["n"] == level["streams"]
        split = level["split"]
        assert 0 < split["arithmetic_ms_per_frame"] < split["ms_per_frame"] and split["op_calls_per_frame"] > 100
    rows = [line for line in body["table"].splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and body["table"].count("under the profiler") == 2


def test_the_gpu_check_script_runs_reduced_on_the_cpu(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    argv = ["--device", "cpu", "--reduced", str(tiny), "--models", str(tmp_path / "models"), "--budget", "300"]
    env = os.environ | {"PYTHON_ENV": sys.prefix}
    done = subprocess.run([str(GPU_CHECK), *argv, "--json", str(out), *ONE_THREAD], env=env, timeout=600)
    assert done.returncode == 0

    body = _document(out, "qwen-check")["qwen-check"]
    rows = {(row["engine"], row["config"], row["streams"]): row for row in body["rows"]}
    for config in ("default", "int8"):
        for streams in (1, 2):
            row = rows["ours", config, streams]
            assert row["status"] == "ok" and row["ttfa_ms"] > 0 and row["x_realtime"] > 0, row
    for config in ("compile", "fp8"):
        assert rows["ours", config, 1]["status"] == "skipped" and "CUDA" in rows["ours", config, 1]["detail"]
    for anchor in (("faster-qwen3-tts", 1), ("faster-qwen3-tts-batch", 32)):
        assert rows[anchor[0], "default", anchor[1]]["status"] == "skipped"
    dtype = body["dtype"]
    assert body["dtype_status"] == "ok" and dtype["frames"] == DTYPE_FRAMES
    assert 0 <= dtype["identical_frames"] <= DTYPE_FRAMES and 0 <= dtype["code_agreement"] <= 1
    assert "bf16 vs fp32, greedy" in body["table"]


def test_a_greedy_variant_shares_the_weights(tiny: Path, tmp_path: Path) -> None:
    greedy = greedy_variant(tiny, tmp_path)
    generation = json.loads((greedy / "generation_config.json").read_text(encoding="utf-8"))
    assert generation["do_sample"] is False and generation["subtalker_dosample"] is False
    assert (greedy / "model.safetensors").resolve() == (tiny / "model.safetensors").resolve()
    assert json.loads((tiny / "generation_config.json").read_text(encoding="utf-8"))["do_sample"] is True


def test_the_overhead_comparison_imports_the_older_revision(tmp_path: Path) -> None:
    tree = export_tree("HEAD", tmp_path)
    where = "import media_server, loadtest.qwen_probe; print(media_server.__file__, loadtest.qwen_probe.__file__)"
    for source, expected in ((tree, tree), (None, GPU_CHECK.parents[1])):
        cwd, env = launch(source)
        done = subprocess.run([sys.executable, "-c", where], cwd=cwd, env=env, capture_output=True, text=True)
        server, probe = (Path(path) for path in done.stdout.split())
        assert server == expected / "media_server" / "__init__.py"
        assert probe == GPU_CHECK.parents[1] / "loadtest" / "qwen_probe.py"
