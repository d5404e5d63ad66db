"""The adversarial load test: live WebRTC conversations while every kind of hostile client attacks.

For the run's duration, at once:

1. `sessions` live WebRTC conversations (`swarm.run_level`), speaking unique texts;
2. non-reading WebSocket clients on `/ws/tts`, asking for speech within the message rate;
3. a telephony flood: non-reading `/ws/telephony` clients sending twice the message rate, with
   60 KB event names, and one that reads and counts its `rate_limited` events;
4. malformed JSON (deep nesting, 5,000-digit numbers, NaN) on three HTTP routes, a WebSocket and
   a data channel;
5. slow bodies: `/tts` bodies trickled a byte every few seconds;
6. offers with hundreds of extra ICE candidates, and with a few no server may check;
7. a batch flood: `batch_loops` closed loops of `/v1/audio/speech`.

Meanwhile the server's resident memory is sampled every second, and every HTTP status is counted
by route, by the clients and by the server itself (`/metrics`). The run passes when no answer was a
5xx (a 503 `busy`, refusing work beyond the admission queue, is the design's answer to a flood and
is counted apart) or a body cut short, the live sessions had no underrun by the server's count, the server's memory
grew by less than `max_rss_growth_mib` over its start, and the server still answers `/healthz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import psutil

from clients.metrics import http_statuses, scrape_if_any, status_changes
from loadtest.answers import ServerError, StatusTally, server_errors
from loadtest.floods import (
    TELEPHONY,
    BatchFlood,
    BatchFloodResult,
    RateProbe,
    RateProbeResult,
    SlowBodies,
    SlowBodyResult,
    SocketFlood,
    SocketFloodResult,
    speaking_non_reader,
    telephony_flooder,
)
from loadtest.hostile_requests import CandidateOffers, CandidateOffersResult, MalformedJson, MalformedResult
from loadtest.swarm import LevelResult, SwarmConfig, run_level
from loadtest.texts import UniqueTexts

MIB = 2**20
STOP_GRACE_S = 5.0
SETTLE_S = 2.0
HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=10)
NON_READER_QUERY = "?sample_rate=48000"  # the most bytes a second the route will send


@dataclass(frozen=True)
class AdversarialConfig:
    duration_s: float = 120.0
    sessions: int = 8
    max_rss_growth_mib: float = 300.0
    non_readers: int = 4
    speak_every_s: float = 1.0
    telephony_flooders: int = 2
    telephony_rate_per_s: float = 300.0  # twice the server's default budget (100 + 50 media events a second)
    slow_bodies: int = 4
    byte_every_s: float = 5.0
    crowded_candidates: int = 300
    batch_loops: int = 32
    pause_s: tuple[float, float] = (0.5, 2.0)
    seed: int = 7
    voice: str | None = None
    sample_every_s: float = 1.0


@dataclass(frozen=True)
class Memory:
    """The server's resident memory (MiB) when the attack started, at its highest, and at the end
    (the attackers gone, `SETTLE_S` later); `samples` are (seconds since the start, MiB)."""

    start_mib: float | None
    max_mib: float | None
    end_mib: float | None
    growth_mib: float | None
    """The highest minus the start."""
    samples: list[tuple[float, float]] = field(repr=False)


@dataclass(frozen=True)
class AdversarialResult:
    config: AdversarialConfig
    duration_s: float
    live: LevelResult | None
    live_error: str | None
    non_readers: SocketFloodResult
    telephony: SocketFloodResult
    rate_probe: RateProbeResult
    malformed: MalformedResult
    slow_bodies: SlowBodyResult
    candidates: CandidateOffersResult
    batch: BatchFloodResult
    client_statuses: dict[str, dict[str, int]]
    """Route -> status -> answers, as the attacking clients saw them (the live sessions' aside)."""
    server_statuses: dict[str, dict[str, int]] | None
    """Route -> status -> answers, as the server counted them (`/metrics`), the live sessions' included."""
    server_errors: list[ServerError]
    server_rss: Memory
    server_alive: bool
    attack_errors: list[str]
    passed: bool
    failures: list[str]


class _Attack(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


class _MemorySampler:
    """Samples a process's resident memory every `every_s` seconds while entered (`async with`)."""

    def __init__(self, pid: int | None, every_s: float) -> None:
        self._process = psutil.Process(pid) if pid else None
        self._every_s = every_s
        self._started = time.monotonic()
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(psutil.Error):
            rss = self._process.memory_info().rss / MIB
            if rss > 0:  # a process that has died but not been reaped reads 0
                self.samples.append((round(time.monotonic() - self._started, 1), round(rss, 1)))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            self.sample()

    async def __aenter__(self) -> _MemorySampler:
        self.sample()
        self._task = asyncio.create_task(self._run(), name="rss-sampler")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()

    def result(self) -> Memory:
        values = [mib for _, mib in self.samples]
        if not values:
            return Memory(None, None, None, None, [])
        return Memory(values[0], max(values), values[-1], round(max(values) - values[0], 1), self.samples)


async def _live(
    url: str, config: AdversarialConfig, pids: Mapping[str, int | None]
) -> tuple[LevelResult | None, str | None]:
    if config.sessions <= 0:
        await asyncio.sleep(config.duration_s)
        return None, None
    swarm = SwarmConfig(
        peers=config.sessions,
        duration_s=config.duration_s,
        pause_s=config.pause_s,
        seed=config.seed,
        voice=config.voice,
    )
    try:
        return await run_level(url, swarm, pids), None
    except (ConnectionError, TimeoutError, aiohttp.ClientError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


async def _finish(tasks: dict[str, asyncio.Task[None]]) -> list[str]:
    """Wait a little for the attacks to stop, cancel the stragglers; why any of them ended early."""
    await asyncio.wait(tasks.values(), timeout=STOP_GRACE_S)
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    errors = []
    for name, task in tasks.items():
        if not task.cancelled() and (exc := task.exception()) is not None:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return errors


async def _alive(http: aiohttp.ClientSession, url: str, pid: int | None) -> bool:
    if pid is not None and not psutil.pid_exists(pid):
        return False
    try:
        async with http.get(url + "/healthz", timeout=HEALTH_TIMEOUT) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _server_side_errors(statuses: Mapping[str, Mapping[str, int]] | None) -> int:
    """5xx other than 503 in the server's own count (it does not say which 503s were `busy`)."""
    if statuses is None:
        return 0
    return sum(
        n for counts in statuses.values() for status, n in counts.items() if status[0] == "5" and status != "503"
    )


def judge(
    config: AdversarialConfig,
    live: LevelResult | None,
    live_error: str | None,
    client_statuses: Mapping[str, Mapping[str, int]],
    server_statuses: Mapping[str, Mapping[str, int]] | None,
    memory: Memory,
    alive: bool,
    attack_errors: list[str],
) -> list[str]:
    """Why the run failed (nothing when it passed)."""
    failures = []
    if errors := server_errors(client_statuses):
        failures.append(f"{errors} answers were 5xx (other than 503 busy) or bodies cut short")
    if errors := _server_side_errors(server_statuses):
        failures.append(f"the server counted {errors} answers 5xx other than 503")
    if live_error is not None:
        failures.append(f"the live sessions failed: {live_error}")
    if live is not None:
        server = live.summary.server_underruns
        underruns = live.summary.underrun_utterances if server is None else round(server.gaps)
        if underruns:
            counted = "the client's count" if server is None else "the server's count"
            failures.append(f"{underruns} underruns in the live sessions ({counted})")
    if memory.growth_mib is None:
        failures.append("the server's memory was not measured (its process is unknown: use --spawn or --server-pid)")
    elif memory.growth_mib >= config.max_rss_growth_mib:
        failures.append(
            f"the server's memory grew {memory.growth_mib:.0f} MiB (bound: {config.max_rss_growth_mib:.0f})"
        )
    if not alive:
        failures.append("the server did not answer /healthz after the run")
    failures.extend(f"an attack stopped early: {error}" for error in attack_errors)
    return failures


async def run_adversarial(url: str, config: AdversarialConfig, pids: Mapping[str, int | None]) -> AdversarialResult:
    """Attack the server at `url` (process `pids["server"]`) for `config.duration_s` while live sessions talk."""
    tally = StatusTally()
    texts = UniqueTexts()
    non_readers = SocketFlood(
        url, "/ws/tts" + NON_READER_QUERY, config.non_readers, speaking_non_reader(texts, config.speak_every_s), tally
    )
    telephony = SocketFlood(
        url, TELEPHONY, config.telephony_flooders, telephony_flooder(texts, config.telephony_rate_per_s), tally
    )
    rate_probe = RateProbe(url, config.telephony_rate_per_s, tally)
    malformed = MalformedJson(url, tally)
    slow_bodies = SlowBodies(url, config.slow_bodies, config.byte_every_s, tally)
    candidates = CandidateOffers(url, tally, config.crowded_candidates)
    batch = BatchFlood(url, config.batch_loops, texts, tally)
    attacks: dict[str, _Attack] = {
        "non-reading WebSocket clients": non_readers,
        "telephony flood": telephony,
        "telephony rate probe": rate_probe,
        "malformed JSON": malformed,
        "slow bodies": slow_bodies,
        "candidate-heavy offers": candidates,
        "batch flood": batch,
    }
    pid = pids.get("server")
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        before = await scrape_if_any(http, url)
        started = time.monotonic()
        async with _MemorySampler(pid, config.sample_every_s) as memory:
            tasks = {name: asyncio.create_task(attack.run(stop), name=name) for name, attack in attacks.items()}
            try:
                live, live_error = await _live(url, config, pids)
            finally:
                stop.set()
                attack_errors = await _finish(tasks)
            elapsed_s = time.monotonic() - started
            await asyncio.sleep(SETTLE_S)
        after = await scrape_if_any(http, url)
        alive = await _alive(http, url, pid)
    server_statuses = (
        status_changes(http_statuses(before.samples), http_statuses(after.samples))
        if before is not None and after is not None
        else None
    )
    client_statuses = tally.snapshot()
    rss = memory.result()
    failures = judge(config, live, live_error, client_statuses, server_statuses, rss, alive, attack_errors)
    return AdversarialResult(
        config=config,
        duration_s=round(elapsed_s, 1),
        live=live,
        live_error=live_error,
        non_readers=non_readers.result(),
        telephony=telephony.result(),
        rate_probe=rate_probe.result(),
        malformed=malformed.result(),
        slow_bodies=slow_bodies.result(),
        candidates=candidates.result(),
        batch=batch.result(),
        client_statuses=client_statuses,
        server_statuses=server_statuses,
        server_errors=tally.errors,
        server_rss=rss,
        server_alive=alive,
        attack_errors=attack_errors,
        passed=not failures,
        failures=failures,
    )
