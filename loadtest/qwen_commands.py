"""The Qwen3-TTS commands of `python -m loadtest`: `qwen` (the real-size benchmark), `qwen-overhead` and `qwen-check`.

None of them starts a server: they load the server's backend (and, for the
engine figure, its engine) in this process. `--model-dir` names either a
released configuration (`shared/qwen3-tts/<model>/`: a random-weight
checkpoint of its real size is built once under `--models`) or a checkpoint
with weights, loaded as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any

from loadtest import results
from loadtest.server_process import parse_settings

DEFAULT_MODELS = Path(__file__).resolve().parent / "results" / "qwen-models"


def add_parsers(commands: Any) -> None:
    """The three commands, on `python -m loadtest`'s subparsers."""
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model-dir", type=Path, required=True, help="a released configuration or a checkpoint")
    model.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="where built checkpoints are kept")
    model.add_argument("--threads", type=int, help="torch threads on the CPU (default: torch's)")

    bench = commands.add_parser("qwen", parents=[model], help="Qwen3-TTS at real size through the server's backend")
    bench.add_argument("--device", choices=("cpu", "cuda"), required=True)
    bench.add_argument("--streams", type=int, nargs="+", default=[1], help="concurrent streams per level")
    bench.add_argument("--frames", type=int, default=50, help="codec frames per stream (12.5 a second)")
    bench.add_argument("--slots", type=int, help="QWEN_MAX_BATCH (default: the level's stream count)")
    bench.add_argument("--engine", action="store_true", help="also serve the streams through the engine")
    bench.add_argument("--split", action="store_true", help="also split a few frames' time under torch.profiler")
    bench.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="a server setting")
    bench.add_argument("--json", type=Path, required=True, help="results file")

    overhead = commands.add_parser(
        "qwen-overhead", parents=[model], help="our per-frame work before (a git revision) and after, in one run"
    )
    overhead.add_argument("--against", default="main", help="git revision to compare with (default: main)")
    overhead.add_argument("--frames", type=int, default=150)
    overhead.add_argument("--rounds", type=int, default=3, help="alternating runs of each revision")
    overhead.add_argument("--json", type=Path, required=True)

    check = commands.add_parser("qwen-check", help="the one-shot GPU check (see loadtest/gpu_check.sh)")
    check.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    check.add_argument("--budget", type=float, default=480.0, help="seconds for all runs (default: 480)")
    check.add_argument("--releases", type=Path, help="the released configurations (default: ../shared/qwen3-tts)")
    check.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="where built checkpoints are kept")
    check.add_argument("--reduced", type=Path, metavar="CHECKPOINT", help="the CPU mode of the test suite")
    check.add_argument("--threads", type=int, help="torch threads on the CPU (default: torch's)")
    check.add_argument("--json", type=Path, required=True)


def checkpoint(model_dir: Path, models: Path) -> Path:
    """The checkpoint to load: `model_dir` itself when it has weights, else one built from its configuration."""
    from loadtest.qwen_checkpoint import build_released, is_checkpoint

    if is_checkpoint(model_dir):
        return model_dir
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"--model-dir {model_dir}: neither a checkpoint nor a released configuration")
    print(f"a random-weight checkpoint of {model_dir.name} under {models} (built once)", file=sys.stderr)
    return build_released(model_dir, models)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    command = shlex.join(["python", "-m", "loadtest", *argv])
    if args.command == "qwen-check":
        return _check(args, command)
    path = checkpoint(args.model_dir, args.models)
    if args.command == "qwen":
        from loadtest import qwen_bench

        env = parse_settings(args.env)
        levels = qwen_bench.run(path, args.device, args.streams, args.frames, env, args.slots, args.engine, args.split)
        text = qwen_bench.table(levels, args.model_dir.name)
        body: dict[str, Any] = {"levels": [dataclasses.asdict(level) for level in levels], "table": text}
        server = {"model": str(args.model_dir), "checkpoint": str(path), "device": args.device, "env": env}
    else:
        from loadtest import qwen_overhead

        result = qwen_overhead.compare(path, args.against, args.frames, args.rounds, args.json.parent)
        text = qwen_overhead.table(result)
        body = dataclasses.asdict(result) | {"table": text}
        server = {"model": str(args.model_dir), "checkpoint": str(path), "device": "cpu"}
    server["torch_threads"] = torch.get_num_threads()
    results.write(results.document(args.command, command, server, body), args.json)
    print(text)
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace, command: str) -> int:
    import torch

    from loadtest import qwen_check

    releases = args.releases or qwen_check.RELEASES
    plan = qwen_check.models_for(args.reduced, args.models, releases)
    check = qwen_check.run(plan, args.device, args.budget, args.models)
    server = {"device": args.device, "models": {name: str(path) for name, path in plan.models.items()}}
    server["torch_threads"] = torch.get_num_threads()
    if args.device == "cuda":
        server["gpu"] = torch.cuda.get_device_name()
    body = qwen_check.document_body(check)
    results.write(results.document("qwen-check", command, server, body), args.json)
    print(body["table"])
    print(f"wrote {args.json}", file=sys.stderr)
    return 0 if all(row.status != "failed" for row in check.rows) and check.dtype_status != "failed" else 1
