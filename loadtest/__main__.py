"""Command line: `python -m loadtest rtc | http | capacity | adversarial | intelligibility | ray | calls | plot |
report`, and the Qwen3-TTS benchmarks `qwen`, `qwen-overhead` and `qwen-check`, which load the backend in this
process (`loadtest.qwen_commands`).

`rtc`, `http`, `capacity`, `adversarial` and `calls` load a server; `intelligibility` has it speak number-dense
sentences and transcribes them beside raw Piper's (`loadtest.intelligibility`). `--url` targets a running
one (its CPU is measured when its process can be found by its port, or is given with `--server-pid`);
otherwise a server is started for the run on a free port (`--spawn`, the default) with `--env KEY=VALUE`
settings, its log kept in the output folder (with an AudioSocket listener for `calls`; with `--url`, `calls`
needs `--audiosocket-port`). Each run writes `<kind>-<date>.json` and a PNG of the same name into `--out`
and prints its figures as Markdown tables. `adversarial` and `intelligibility` exit with 1 when the server
failed them. `ray` starts its own two servers, standalone then `MODE=ray`, and compares them (see
`loadtest.ray_mode`); it and `calls` write no PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

from clients.telephony import CallServer
from loadtest import qwen_commands, results
from loadtest.adversarial import AdversarialConfig, AdversarialResult, run_adversarial
from loadtest.baseline import start_piper_server
from loadtest.calls import CallsConfig, run_calls
from loadtest.capacity import Criteria, search
from loadtest.http_load import PIPER_ROUTE, ROUTES, PhaseResult, Route, Skipped, merge, probe, run_phase
from loadtest.intelligibility import run_intelligibility
from loadtest.plot import plot
from loadtest.profiling import Profiler, summarize
from loadtest.ray_mode import RayConfig, run_ray_comparison
from loadtest.report import render
from loadtest.resources import QUIET_PERCENT, CpuUsage, wait_for_quiet
from loadtest.server_process import free_port, listener_pid, parse_settings, start_media_server
from loadtest.swarm import LevelResult, SwarmConfig, run_level
from loadtest.texts import UniqueTexts

DEFAULT_OUT = Path(__file__).resolve().parent / "results"

EPILOG = """\
examples:
  python -m loadtest rtc --peers 1 8 16             # a server is started for the run
  python -m loadtest rtc --peers 16 --burst --url http://127.0.0.1:8080
  python -m loadtest capacity --start 8 --step 8
  python -m loadtest http --baseline --concurrency 1 4 --rounds 3 --duration 30
  python -m loadtest rtc --peers 16 --profile --env ENGINE_WORKERS=1
  python -m loadtest adversarial --duration 120 --sessions 8
  python -m loadtest calls --calls 32 --duration 30
  python -m loadtest intelligibility                # needs the asr extra
  unshare -n sh -c 'ip link set lo up && python -m loadtest ray --streams 16 --duration 20'
  python -m loadtest report loadtest/results/*.json
  python -m loadtest plot loadtest/results/rtc-*.json loadtest/results/http-*.json -o figure.png
  python -m loadtest qwen --model-dir ../shared/qwen3-tts/0.6B-Base --device cpu --streams 1 --frames 40 --json q.json
  python -m loadtest qwen-overhead --model-dir CHECKPOINT --against main --json overhead.json
"""


@dataclass(frozen=True)
class Target:
    """What a run loads: the server's URL, the processes to measure, where profiles go."""

    url: str
    pids: dict[str, int | None]
    baseline_url: str | None
    profile_dir: Path | None
    stamp: str
    quiet_wait_s: float
    retries: int
    audiosocket_port: int | None = None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--url", help="load the server already running at this URL")
    where.add_argument("--spawn", action="store_true", help="start a server for the run (the default)")
    common.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a setting of the spawned server"
    )
    common.add_argument("--server-pid", type=int, help="process of the --url server, for its CPU")
    common.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default: %(default)s)")
    common.add_argument("--profile", action="store_true", help="sample the server with py-spy at each level")
    common.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        metavar="S",
        help="before each level, wait up to S s for other work on the machine to stop (default: 60)",
    )
    common.add_argument(
        "--retries",
        type=int,
        default=2,
        help="run a level again when other work used the machine meanwhile (default: 2)",
    )

    swarm = argparse.ArgumentParser(add_help=False)
    swarm.add_argument("--pause", type=float, nargs=2, default=(0.5, 2.0), metavar=("MIN", "MAX"))
    swarm.add_argument("--seed", type=int, default=7)
    swarm.add_argument("--voice", help="voice id for every peer (default: the server's)")

    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Load tests of the media server: WebRTC swarms, HTTP clients, capacity search.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rtc = commands.add_parser("rtc", parents=[common, swarm], help="a swarm of WebRTC peers, level by level")
    rtc.add_argument("--peers", type=int, nargs="+", default=[1, 8, 16], help="sessions per level")
    rtc.add_argument("--duration", type=float, default=30.0, help="seconds per level (default: 30)")
    rtc.add_argument("--burst", action="store_true", help="all peers speak at the same moment")

    capacity = commands.add_parser("capacity", parents=[common, swarm], help="most sessions within targets")
    capacity.add_argument("--duration", type=float, default=20.0, help="seconds per level (default: 20)")
    capacity.add_argument("--start", type=int, default=8)
    capacity.add_argument("--step", type=int, default=8)
    capacity.add_argument("--max", type=int, default=64)
    capacity.add_argument("--p95-ttfa-ms", type=float, default=Criteria.max_p95_ttfa_ms)

    http = commands.add_parser("http", parents=[common], help="concurrent REST, SSE, PCM and WebSocket clients")
    names = [route.name for route in ROUTES]
    http.add_argument("--routes", nargs="+", choices=names, default=names, help="routes to load (default: all)")
    http.add_argument("--concurrency", type=int, nargs="+", default=[4], help="clients per phase")
    http.add_argument("--duration", type=float, default=20.0, help="seconds per phase (default: %(default)s)")
    http.add_argument("--baseline", action="store_true", help="also load piper's own HTTP server")
    http.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="interleave the routes in this many slices of the duration each, so a noisy machine "
        "weighs on every route alike (default: 1)",
    )

    adversarial = commands.add_parser(
        "adversarial", parents=[common, swarm], help="live sessions while hostile clients attack"
    )
    defaults = AdversarialConfig()
    adversarial.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds (default: 120)")
    adversarial.add_argument("--sessions", type=int, default=defaults.sessions, help="live WebRTC sessions")
    adversarial.add_argument(
        "--max-rss-growth",
        type=float,
        default=defaults.max_rss_growth_mib,
        metavar="MIB",
        help="fail when the server's memory grows more than this over its start (default: %(default)s)",
    )
    adversarial.add_argument(
        "--batch-loops", type=int, default=defaults.batch_loops, help="concurrent /v1/audio/speech loops"
    )
    adversarial.add_argument(
        "--non-readers", type=int, default=defaults.non_readers, help="non-reading /ws/tts clients"
    )
    adversarial.add_argument("--slow-bodies", type=int, default=defaults.slow_bodies, help="clients trickling a body")

    calls = commands.add_parser(
        "calls", parents=[common], help="telephony calls of every protocol at once, driven on control channels"
    )
    call_defaults = CallsConfig()
    calls.add_argument("--calls", type=int, default=call_defaults.calls, help="calls (default: %(default)s)")
    calls.add_argument("--duration", type=float, default=call_defaults.duration_s, help="seconds (default: 30)")
    calls.add_argument("--pause", type=float, nargs=2, default=call_defaults.pause_s, metavar=("MIN", "MAX"))
    calls.add_argument("--seed", type=int, default=call_defaults.seed)
    calls.add_argument("--audiosocket-port", type=int, help="the --url server's AUDIOSOCKET_PORT")
    commands.add_parser(
        "intelligibility", parents=[common], help="Whisper tiny's word error rate on our speech and raw Piper's"
    )
    ray = commands.add_parser("ray", help="MODE=ray against standalone: TTFA, per-chunk overhead, failover gap")
    ray_defaults = RayConfig()
    ray.add_argument("--streams", type=int, default=ray_defaults.streams, help="concurrent streams (default: 16)")
    ray.add_argument("--duration", type=float, default=ray_defaults.duration_s, help="seconds per mode (default: 20)")
    ray.add_argument("--replicas", type=int, default=ray_defaults.replicas, help="engine replicas (default: 1)")
    ray.add_argument(
        "--failover-replicas", type=int, default=ray_defaults.failover_replicas, help="for the failover (default: 2)"
    )
    ray.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="a setting of both servers")
    ray.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default: %(default)s)")

    plot_cmd = commands.add_parser("plot", help="draw results files into one PNG")
    plot_cmd.add_argument("files", type=Path, nargs="+")
    plot_cmd.add_argument("-o", "--output", type=Path, required=True)
    report = commands.add_parser("report", help="print results files as Markdown tables")
    report.add_argument("files", type=Path, nargs="+")
    qwen_commands.add_parsers(commands)
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Measurement(Protocol):
    @property
    def cpu(self) -> dict[str, CpuUsage | None]: ...


M = TypeVar("M", bound=_Measurement)


def _others_percent(measurement: _Measurement) -> float:
    others = measurement.cpu.get("others")
    return 0.0 if others is None else others.percent


async def _profiled(
    run: Callable[[], Awaitable[M]], target: Target, pid: int | None, name: str
) -> tuple[M, list[Path]]:
    """`run()`, sampled by py-spy when profiling; the profile's path comes with the result."""
    if target.profile_dir is None:
        return await run(), []
    if pid is None:
        raise SystemExit("--profile needs the server's process: use --spawn or --server-pid")
    path = target.profile_dir / f"profile-{target.stamp}-{name.replace(' ', '-')}.txt"
    with Profiler(pid, path):
        result = await run()
    return result, [path]


async def _measure(run: Callable[[], Awaitable[M]], target: Target, pid: int | None, name: str) -> tuple[M, list[Path]]:
    """One level or phase, started when the machine is quiet and run again (up to `--retries`
    times) while other work used it meanwhile; the quietest attempt is kept."""
    best: tuple[M, list[Path]] | None = None
    for attempt in range(1 + target.retries):
        if target.quiet_wait_s > 0 and not await wait_for_quiet(target.quiet_wait_s):
            _log(f"{name}: the machine is still busy after {target.quiet_wait_s:.0f} s; measuring anyway")
        result = await _profiled(run, target, pid, name)
        others = _others_percent(result[0])
        if best is None or others < _others_percent(best[0]):
            best = result
        if others < QUIET_PERCENT:
            break
        if attempt < target.retries:
            _log(f"{name}: other work used {others:.0f}% of a core meanwhile; measuring again")
    assert best is not None
    return best


def _swarm_config(args: argparse.Namespace, peers: int) -> SwarmConfig:
    return SwarmConfig(
        peers=peers,
        duration_s=args.duration,
        burst=getattr(args, "burst", False),
        pause_s=(args.pause[0], args.pause[1]),
        seed=args.seed,
        voice=args.voice,
    )


def _phase_line(phase: PhaseResult) -> str:
    s = phase.summary
    ttfb = f"TTFB p50 {s.ttfb.p50:.0f} ms" if s.ttfb else "no audio"
    return f"{s.ok}/{s.requests} ok, {ttfb}, {s.audio_x_realtime:.1f}x real time{_others(phase)}"


def _others(measurement: _Measurement) -> str:
    others = _others_percent(measurement)
    return f" (other work used {others:.0f}% of a core meanwhile)" if others >= QUIET_PERCENT else ""


async def _level(target: Target, config: SwarmConfig) -> LevelResult:
    run = functools.partial(run_level, target.url, config, target.pids)
    level, profile = await _measure(run, target, target.pids["server"], f"{config.peers} sessions")
    s = level.summary
    ttfa = f"p50 {s.server_ttfa.p50:.0f} p95 {s.server_ttfa.p95:.0f} ms" if s.server_ttfa else "none"
    done = f"{s.completed}/{s.utterances} done, {s.underrun_utterances} underran"
    _log(f"{config.peers} sessions: {done}, server TTFA {ttfa}{_others(level)}")
    return dataclasses.replace(level, profile=summarize(profile))


async def _rtc(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    levels = [await _level(target, _swarm_config(args, peers)) for peers in args.peers]
    return {"levels": [dataclasses.asdict(level) for level in levels]}


async def _capacity(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    result = await search(
        functools.partial(_level, target),
        _swarm_config(args, args.start),
        Criteria(max_p95_ttfa_ms=args.p95_ttfa_ms),
        args.start,
        args.step,
        args.max,
    )
    _log(f"capacity: {result.capacity} sessions")
    return dataclasses.asdict(result)


async def _runnable(plan: list[tuple[str, str, Route]]) -> tuple[list[tuple[str, str, Route]], list[Skipped]]:
    runnable, skipped = [], []
    for name, url, route in plan:
        reason = await probe(url, route)
        if reason is None:
            runnable.append((name, url, route))
        else:
            _log(f"skipping {name} {route.name}: {reason}")
            skipped.append(Skipped(name, route.name, reason))
    return runnable, skipped


async def _http(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    plan = [("media-server", target.url, route) for route in ROUTES if route.name in args.routes]
    if target.baseline_url is not None:
        plan.append(("piper", target.baseline_url, PIPER_ROUTE))
    runnable, skipped = await _runnable(plan)
    slices: dict[tuple[str, str, int], list[tuple[PhaseResult, list[Path]]]] = {}
    texts = UniqueTexts()
    for concurrency in args.concurrency:
        for turn in range(1, args.rounds + 1):
            for name, url, route in runnable:
                pid = target.pids["piper" if name == "piper" else "server"]
                slice_s = args.duration / args.rounds
                run = functools.partial(run_phase, url, route, name, concurrency, slice_s, target.pids, texts)
                label = f"{name} {route.name} x{concurrency} round {turn}"
                measured = await _measure(run, target, pid, label)
                _log(f"{label}: {_phase_line(measured[0])}")
                slices.setdefault((name, route.name, concurrency), []).append(measured)
    phases = [
        dataclasses.replace(merge([p for p, _ in group]), profile=summarize([f for _, paths in group for f in paths]))
        for group in slices.values()
    ]
    for phase in phases:
        _log(f"{phase.target} {phase.route} x{phase.concurrency}: {_phase_line(phase)}")
    return {
        "phases": [dataclasses.asdict(phase) for phase in phases],
        "skipped": [dataclasses.asdict(skip) for skip in skipped],
    }


def _adversarial_line(result: AdversarialResult) -> str:
    verdict = "pass" if result.passed else "FAIL (" + "; ".join(result.failures) + ")"
    parts = [f"adversarial: {verdict}"]
    if result.live is not None:
        s = result.live.summary
        ttfa = f"p50 {s.server_ttfa.p50:.0f} p95 {s.server_ttfa.p95:.0f} ms" if s.server_ttfa else "none"
        server = "n/a" if s.server_underruns is None else f"{s.server_underruns.gaps:.0f}"
        parts.append(
            f"{result.live.peers} live sessions: {s.completed}/{s.utterances} done, server TTFA {ttfa}, "
            f"underruns {s.underrun_utterances} (server {server})"
        )
    rss = result.server_rss
    if rss.start_mib is not None:
        parts.append(f"server RSS {rss.start_mib:.0f} -> max {rss.max_mib:.0f} -> end {rss.end_mib:.0f} MiB")
    batch = ", ".join(f"{status}: {n}" for status, n in result.batch.statuses.items())
    parts.append(f"batch {batch or 'none'}")
    parts.append(
        f"non-readers dropped {result.non_readers.disconnects}, telephony dropped {result.telephony.disconnects}"
    )
    return "; ".join(parts)


async def _adversarial(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    if target.profile_dir is not None:
        raise SystemExit("adversarial: --profile is not supported (profile a level of `rtc` instead)")
    config = AdversarialConfig(
        duration_s=args.duration,
        sessions=args.sessions,
        max_rss_growth_mib=args.max_rss_growth,
        non_readers=args.non_readers,
        slow_bodies=args.slow_bodies,
        batch_loops=args.batch_loops,
        pause_s=(args.pause[0], args.pause[1]),
        seed=args.seed,
        voice=args.voice,
    )
    if target.quiet_wait_s > 0 and not await wait_for_quiet(target.quiet_wait_s):
        _log(f"adversarial: the machine is still busy after {target.quiet_wait_s:.0f} s; attacking anyway")
    result = await run_adversarial(target.url, config, target.pids)
    _log(_adversarial_line(result))
    return dataclasses.asdict(result)


async def _calls(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    if target.profile_dir is not None:
        raise SystemExit("calls: --profile is not supported")
    if target.audiosocket_port is None:
        raise SystemExit("calls: --url needs --audiosocket-port (the server's AUDIOSOCKET_PORT)")
    config = CallsConfig(
        calls=args.calls, duration_s=args.duration, pause_s=(args.pause[0], args.pause[1]), seed=args.seed
    )
    if target.quiet_wait_s > 0 and not await wait_for_quiet(target.quiet_wait_s):
        _log(f"calls: the machine is still busy after {target.quiet_wait_s:.0f} s; calling anyway")
    result = await run_calls(CallServer(target.url, target.audiosocket_port), config, target.pids)
    _log(f"calls: {result.calls} calls, {result.server_underruns:.0f} server underruns")
    return dataclasses.asdict(result)


async def _intelligibility(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    result = await run_intelligibility(target.url)
    _log(f"intelligibility: ours WER {result.ours_wer:.3f}, raw Piper {result.raw_wer:.3f} ({result.model})")
    return {"summary": result.summary(), "sentences": [dataclasses.asdict(heard) for heard in result.sentences]}


RUNNERS: dict[str, Callable[[argparse.Namespace, Target], Coroutine[Any, Any, dict[str, Any]]]] = {
    "rtc": _rtc,
    "capacity": _capacity,
    "http": _http,
    "adversarial": _adversarial,
    "calls": _calls,
    "intelligibility": _intelligibility,
}


def _exit_on_terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the servers this run started are stopped


def _load(args: argparse.Namespace, argv: list[str]) -> int:
    previous = signal.signal(signal.SIGTERM, _exit_on_terminate)
    try:
        return _run(args, argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    command: str = args.command
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out: Path = args.out
    with contextlib.ExitStack() as stack:
        audiosocket_port = getattr(args, "audiosocket_port", None)
        if args.url:
            url = args.url.rstrip("/")
            pid = args.server_pid or listener_pid(url)
            server: dict[str, Any] = {"url": url, "spawned": False, "pid": pid}
        else:
            env = parse_settings(args.env)
            if command == "calls":
                env.setdefault("AUDIOSOCKET_PORT", str(free_port()))
                audiosocket_port = int(env["AUDIOSOCKET_PORT"])
            service = start_media_server(env, out / f"server-{stamp}.log")
            stack.callback(service.stop)
            url, pid = service.url, service.pid
            server = {"url": url, "spawned": True, "pid": pid, "env": env}
        pids: dict[str, int | None] = {"server": pid}
        baseline_url = None
        if command == "http" and args.baseline:
            piper = start_piper_server(out / f"piper-{stamp}.log")
            stack.callback(piper.stop)
            pids["piper"], baseline_url = piper.pid, piper.url
        profile_dir = out if args.profile else None
        target = Target(url, pids, baseline_url, profile_dir, stamp, args.quiet_wait, args.retries, audiosocket_port)
        body = asyncio.run(RUNNERS[command](args, target))
    doc = results.document(command, shlex.join(["python", "-m", "loadtest", *argv]), server, body)
    path = results.write(doc, out / f"{command}-{stamp}.json")
    print(render([doc]))
    if command == "calls":  # its figures are the table
        _log(f"wrote {path}")
        return 0
    figure = plot([doc], path.with_suffix(".png"))
    _log(f"wrote {path} and {figure}")
    if command == "intelligibility":
        return 0 if body["summary"]["passed"] else 1
    return 1 if command == "adversarial" and not body["passed"] else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "plot":
        _log(f"wrote {plot(results.load(args.files), args.output)}")
        return 0
    if args.command == "report":
        print(render(results.load(args.files)))
        return 0
    if args.command in ("qwen", "qwen-overhead", "qwen-check"):
        return qwen_commands.run(args, argv)
    if args.command == "ray":
        return _ray(args, argv)
    return _load(args, argv)


def _ray(args: argparse.Namespace, argv: list[str]) -> int:
    config = RayConfig(args.streams, args.duration, args.replicas, args.failover_replicas, parse_settings(args.env))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    previous = signal.signal(signal.SIGTERM, _exit_on_terminate)
    try:
        comparison = run_ray_comparison(config, args.out, stamp)
    finally:
        signal.signal(signal.SIGTERM, previous)
    server = {"spawned": True, "env": config.env, "modes": ["standalone", "ray"]}
    command = shlex.join(["python", "-m", "loadtest", *argv])
    doc = results.document("ray", command, server, dataclasses.asdict(comparison))
    path = results.write(doc, args.out / f"ray-{stamp}.json")
    print(render([doc]))
    _log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
