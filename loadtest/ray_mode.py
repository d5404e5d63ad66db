"""`python -m loadtest ray`: what `MODE=ray` costs against standalone, measured in one run on one machine.

Servers are started one after the other on the same CPUs: standalone, then
`MODE=ray` with `--replicas` engine replicas (default one: the same engine as
standalone, `ENGINE_WORKERS` threads on one scheduler, behind Ray's hop) on
the one-machine cluster the server starts itself. Each gets the same load:
`--streams` closed-loop clients streaming real-time speech from `/tts/pcm` for
`--duration` s, every text unique (no cache answers). Then the failover phase,
on a `MODE=ray` server with `--failover-replicas` replicas: `--streams` long
utterances at once, and once every one has its first audio an engine replica
is killed (SIGKILL to its process).

Figures:
- TTFA: each request's time to its first audio byte, at the client; what Ray
  adds is the difference of the two modes' percentiles.
- Per-chunk overhead: the Ray gateway's `media_server_engine_chunk_transit_seconds`
  between two scrapes around the load (each chunk's time from the wall-clock
  stamp its replica put on it to the gateway: exact on one machine), its
  quantiles interpolated within the histogram's buckets as Prometheus does.
  Standalone has no such hop (its chunks move between threads of one process).
- Failover gap: for each stream, the wait from its last audio before the kill
  to its first one after (the streams the dead replica served wait for the
  re-issue; the others show their usual pace); the target is on the longest.
  Also each stream's longest silence if it was played from its first byte at
  the audio's own rate: a client that reads faster than real time buffers
  ahead, so its listener may hear less of the gap, or none.

Ray binds the machine's non-loopback address when it has one: run this inside
a loopback-only network namespace as the Ray tests do (`unshare -n`, `lo` up).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from clients.metrics import Exposition, histograms, scrape
from loadtest.http_clients import SAMPLE_WIDTH
from loadtest.server_process import ServiceProcess, start_media_server
from loadtest.stats import Distribution, distribution
from loadtest.texts import UTTERANCES, UniqueTexts

TRANSIT = "media_server_engine_chunk_transit_seconds"
REPLICA_TITLE = "ServeReplica:media-server-engine"
"""What Ray puts in an engine replica's process title."""
FAILOVER_TEXT = " ".join(f"This is sentence number {n} of a long answer that keeps a replica busy." for n in range(6))
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
FIRST_AUDIO_TIMEOUT_S = 60.0
TARGET_ADDED_TTFA_P50_MS = 5.0
TARGET_CHUNK_P99_MS = 5.0
TARGET_FAILOVER_GAP_MS = 500.0


@dataclass(frozen=True)
class RayConfig:
    streams: int = 16
    duration_s: float = 20.0
    replicas: int = 1
    failover_replicas: int = 2
    env: dict[str, str] = field(default_factory=dict)
    """Settings of both servers (on top of `AUDIO_CACHE_BYTES=0`)."""


@dataclass
class Stream:
    """One streamed answer: its status, when it was sent, and when each piece of audio came (seconds, bytes)."""

    status: int = 0
    sent_at: float = 0.0
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    sample_rate: int = 0
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at its first audio, or when it ended without any."""

    def gap_across_ms(self, at: float) -> float | None:
        """From its last audio before `at` to its first one after; None unless it had audio on both sides."""
        before = [t for t, _ in self.arrivals if t < at]
        after = [t for t, _ in self.arrivals if t >= at]
        return (after[0] - before[-1]) * 1000 if before and after else None

    @property
    def ttfa_ms(self) -> float | None:
        return (self.arrivals[0][0] - self.sent_at) * 1000 if self.arrivals else None

    def longest_silence_ms(self) -> float:
        """Its longest silence, played from its first byte at the audio's own rate (0 for no audio)."""
        if not self.arrivals or not self.sample_rate:
            return 0.0
        bytes_per_s = self.sample_rate * SAMPLE_WIDTH
        played_until, longest = self.arrivals[0][0], 0.0
        for at, size in self.arrivals:
            longest = max(longest, at - played_until)
            played_until = max(played_until, at) + size / bytes_per_s
        return longest * 1000


@dataclass(frozen=True)
class ModeResult:
    """One server under the streaming load."""

    mode: str
    requests: int
    ok: int
    ttfa: Distribution | None
    chunk_transit: Distribution | None
    """Per-chunk transit replica -> gateway (ms; `MODE=ray` only), from the gateway's histogram."""


@dataclass(frozen=True)
class FailoverResult:
    streams: int
    completed: int
    killed_pid: int | None
    gap: Distribution | None
    """Over the streams with audio on both sides of the kill, each one's wait across it (ms)."""
    longest_silence: Distribution | None
    """Over the streams, each one's longest silence (ms)."""


@dataclass(frozen=True)
class RayComparison:
    streams: int
    replicas: int
    failover_replicas: int
    standalone: ModeResult
    ray: ModeResult
    failover: FailoverResult
    added_ttfa_p50_ms: float | None
    added_ttfa_p99_ms: float | None
    verdicts: dict[str, bool]
    """Each target of the issue: met or not."""


async def stream_once(http: aiohttp.ClientSession, url: str, text: str, stream: Stream) -> None:
    """POST `text` to `/tts/pcm` and note when each piece of its audio arrives."""
    stream.sent_at = time.monotonic()
    try:
        async with http.post(f"{url}/tts/pcm", json={"text": text}) as resp:
            stream.status = resp.status
            if resp.status != 200:
                await resp.read()
                return
            stream.sample_rate = int(resp.headers["X-Sample-Rate"])
            async for data in resp.content.iter_any():
                stream.arrivals.append((time.monotonic(), len(data)))
                stream.answered.set()
    finally:
        stream.answered.set()


async def closed_loop(url: str, clients: int, duration_s: float) -> list[Stream]:
    """`clients` clients, each sending its next request when the last one is answered, for `duration_s`."""
    texts = UniqueTexts()
    streams: list[Stream] = []
    stop_at = time.monotonic() + duration_s

    async def client(offset: int) -> None:
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
            turn = offset
            while time.monotonic() < stop_at:
                stream = Stream()
                streams.append(stream)
                await stream_once(http, url, texts(UTTERANCES[turn % len(UTTERANCES)]), stream)
                turn += clients

    await asyncio.gather(*(client(n) for n in range(clients)))
    return streams


def transit_ms(before: Exposition, after: Exposition) -> Distribution | None:
    """The chunk transit between two scrapes (ms), quantiles interpolated in its buckets; `max` is the upper bound
    of the bucket the slowest chunk fell in (the last finite bound, when it fell beyond that)."""
    later = histograms(after.samples).get(TRANSIT)
    if later is None:
        return None
    earlier = histograms(before.samples).get(TRANSIT)
    delta = later - earlier if earlier is not None else later
    quantiles = [delta.quantile(q) for q in (0.5, 0.95, 0.99)]
    if delta.count <= 0 or any(q is None for q in quantiles):
        return None
    p50, p95, p99 = (round(q * 1000, 2) for q in quantiles if q is not None)
    finite = [bound for bound, _ in delta.buckets if bound != float("inf")]
    full = [bound for bound, cumulative in delta.buckets if cumulative >= delta.count and bound in finite]
    upper = full[0] if full else finite[-1]
    return Distribution(
        int(delta.count), p50, p95, p99, round(upper * 1000, 2), round(delta.sum / delta.count * 1000, 2)
    )


async def measure_mode(mode: str, url: str, config: RayConfig) -> ModeResult:
    async with aiohttp.ClientSession() as http:
        await closed_loop(url, config.streams, min(3.0, config.duration_s))  # warm-up: models, caches, routes
        before = await scrape(url, http=http)
        streams = await closed_loop(url, config.streams, config.duration_s)
        after = await scrape(url, http=http)
    ok = [stream for stream in streams if stream.status == 200 and stream.arrivals]
    return ModeResult(
        mode=mode,
        requests=len(streams),
        ok=len(ok),
        ttfa=distribution([ms for stream in ok if (ms := stream.ttfa_ms) is not None]),
        chunk_transit=transit_ms(before, after),
    )


def replica_processes(server_pid: int) -> list[psutil.Process]:
    """The engine replicas' processes among the server's descendants (its Ray head node runs them)."""
    found = []
    for process in psutil.Process(server_pid).children(recursive=True):
        try:
            if REPLICA_TITLE in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


async def measure_failover(url: str, server_pid: int, streams: int) -> FailoverResult:
    """`streams` long utterances at once; one replica killed once all of them have their first audio."""
    texts = UniqueTexts()
    records = [Stream() for _ in range(streams)]
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        # Found before the streams start: a process scan while they run would hold chunks back past the kill.
        replicas = replica_processes(server_pid)
        tasks = [asyncio.create_task(stream_once(http, url, texts(FAILOVER_TEXT), record)) for record in records]
        killed: int | None = None
        killed_at = float("inf")
        try:
            async with asyncio.timeout(FIRST_AUDIO_TIMEOUT_S):
                await asyncio.gather(*(record.answered.wait() for record in records))
            if replicas:
                killed = replicas[0].pid
                os.kill(killed, signal.SIGKILL)
                killed_at = time.monotonic()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    done = [record for record in records if record.status == 200 and record.arrivals]
    return FailoverResult(
        streams=streams,
        completed=len(done),
        killed_pid=killed,
        gap=distribution([gap for record in done if (gap := record.gap_across_ms(killed_at)) is not None]),
        longest_silence=distribution([record.longest_silence_ms() for record in done]),
    )


def _added(ray: Distribution | None, standalone: Distribution | None, field_name: str) -> float | None:
    if ray is None or standalone is None:
        return None
    return round(float(getattr(ray, field_name)) - float(getattr(standalone, field_name)), 1)


def _server(env: dict[str, str], log_dir: Path, name: str, stamp: str) -> ServiceProcess:
    return start_media_server({"AUDIO_CACHE_BYTES": "0", **env}, log_dir / f"server-{name}-{stamp}.log")


def run_ray_comparison(config: RayConfig, log_dir: Path, stamp: str) -> RayComparison:
    """Both modes under the same load, then the failover phase; each server stopped after its phase."""
    standalone_server = _server({**config.env, "MODE": "standalone"}, log_dir, "standalone", stamp)
    try:
        standalone = asyncio.run(measure_mode("standalone", standalone_server.url, config))
    finally:
        standalone_server.stop()
    ray_env = {**config.env, "MODE": "ray", "ENGINE_REPLICAS": str(config.replicas)}
    ray_server = _server(ray_env, log_dir, "ray", stamp)
    try:
        ray = asyncio.run(measure_mode("ray", ray_server.url, config))
    finally:
        ray_server.stop()
    failover_env = {**ray_env, "ENGINE_REPLICAS": str(config.failover_replicas)}
    failover_server = _server(failover_env, log_dir, "ray-failover", stamp)
    try:
        failover = asyncio.run(measure_failover(failover_server.url, failover_server.pid, config.streams))
    finally:
        failover_server.stop()
    added_p50 = _added(ray.ttfa, standalone.ttfa, "p50")
    gap = failover.gap
    verdicts = {
        "added TTFA p50 <= 5 ms": added_p50 is not None and added_p50 <= TARGET_ADDED_TTFA_P50_MS,
        "per-chunk p99 <= 5 ms": ray.chunk_transit is not None and ray.chunk_transit.p99 <= TARGET_CHUNK_P99_MS,
        "failover gap <= 500 ms": gap is not None
        and failover.killed_pid is not None
        and gap.max <= TARGET_FAILOVER_GAP_MS
        and failover.completed == failover.streams,
    }
    return RayComparison(
        streams=config.streams,
        replicas=config.replicas,
        failover_replicas=config.failover_replicas,
        standalone=standalone,
        ray=ray,
        failover=failover,
        added_ttfa_p50_ms=added_p50,
        added_ttfa_p99_ms=_added(ray.ttfa, standalone.ttfa, "p99"),
        verdicts=verdicts,
    )


def ray_report(body: dict[str, Any]) -> str:
    """The comparison as Markdown (from a results document's `ray` body)."""

    def ms(dist: dict[str, Any] | None, name: str) -> str:
        return "–" if dist is None else f"{dist[name]:g}"

    rows = [
        "| mode | requests ok | TTFA p50 | TTFA p99 | chunk transit p50 | chunk transit p99 |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("standalone", "ray"):
        mode = body[key]
        rows.append(
            f"| {mode['mode']} | {mode['ok']}/{mode['requests']} | {ms(mode['ttfa'], 'p50')} | "
            f"{ms(mode['ttfa'], 'p99')} | {ms(mode['chunk_transit'], 'p50')} | {ms(mode['chunk_transit'], 'p99')} |"
        )
    failover = body["failover"]
    gap, silence = failover["gap"], failover["longest_silence"]
    lines = [
        f"{body['streams']} streams, Ray with {body['replicas']} replica(s) (ms):",
        "",
        *rows,
        "",
        f"Added TTFA: p50 {body['added_ttfa_p50_ms']} ms, p99 {body['added_ttfa_p99_ms']} ms. "
        f"Failover ({failover['streams']} streams on {body['failover_replicas']} replicas, one killed "
        f"(pid {failover['killed_pid']})): "
        f"{failover['completed']}/{failover['streams']} completed; wait for audio across the kill per stream "
        f"p50 {ms(gap, 'p50')} ms, max {ms(gap, 'max')} ms; longest silence a listener playing from the first "
        f"byte heard p50 {ms(silence, 'p50')} ms, max {ms(silence, 'max')} ms.",
        "Targets: " + ", ".join(f"{name}: {'met' if met else 'NOT met'}" for name, met in body["verdicts"].items()),
    ]
    return "\n".join(lines)
