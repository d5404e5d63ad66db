"""A mixed telephony load (`python -m loadtest calls`): calls of every call protocol at once.

`calls` calls are opened at the same time, round robin over Twilio, Telnyx, Plivo, Vonage and Asterisk
AudioSocket (the fake platforms of `clients/telephony.py`, each sending its caller's audio every 20 ms),
each with its control channel. Every call then talks like an agent, out of step with the others (its first
turn after a random part of the longest pause): it speaks a unique conversational turn, waits for its
`done`, pauses, and speaks again until the run's time is up. Measured per protocol:
the server's TTFA (`audio_start.ttfa_ms`), the longest wait between two frames inside an utterance at the
platform (20 ms when smooth; the first frames come ahead of time for the far end's buffer), frames of the
wrong size, and the server's own underrun count for the protocol's route (`/metrics`, before and after).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from clients.metrics import GAPS, Exposition, sample, scrape
from clients.telephony import (
    CALL_FRAME_BYTES,
    CALL_PROTOCOLS,
    CALL_ROUTES,
    CallServer,
    Peer,
    controlled_call,
    event,
    speak,
)
from loadtest.resources import CpuMeter, CpuUsage
from loadtest.stats import Distribution, distribution
from loadtest.texts import UTTERANCES, UniqueTexts

UNDERRUN_GAP_MS = 40.0
"""A wait between two frames inside an utterance longer than this (two frames) is a gap the caller hears."""


@dataclass(frozen=True)
class CallsConfig:
    calls: int = 32
    duration_s: float = 30.0
    pause_s: tuple[float, float] = (0.5, 2.0)
    seed: int = 7
    event_timeout_s: float = 60.0


@dataclass
class _CallRecord:
    protocol: str
    ttfa_ms: list[float] = field(default_factory=list)
    max_gaps_ms: list[float] = field(default_factory=list)
    utterances: int = 0
    completed: int = 0
    frames: int = 0
    wrong_size_frames: int = 0
    error: str | None = None


@dataclass(frozen=True)
class ProtocolResult:
    protocol: str
    calls: int
    failed_calls: int
    utterances: int
    completed: int
    server_ttfa: Distribution | None
    max_frame_gap: Distribution | None
    """Per utterance, the longest wait between two of its frames at the platform (ms)."""
    gap_utterances: int
    """Utterances with a wait over UNDERRUN_GAP_MS between two of their frames at the platform."""
    frames: int
    wrong_size_frames: int
    server_underruns: float
    errors: list[str]


@dataclass(frozen=True)
class CallsResult:
    calls: int
    duration_s: float
    protocols: list[ProtocolResult]
    cpu: dict[str, CpuUsage | None]

    @property
    def server_underruns(self) -> float:
        return sum(result.server_underruns for result in self.protocols)


def _utterance_gaps(peer: Peer, starts: list[int]) -> list[float]:
    """The longest wait between two frames of each utterance, its frames being those from its start index on."""
    frames = peer.received.frames
    gaps = []
    for begin, end in zip(starts, [*starts[1:], len(frames)], strict=True):
        arrivals = [at for at, _ in frames[begin:end]]
        waits = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
        if waits:
            gaps.append(round(1000 * max(waits), 1))
    return gaps


async def _talk(
    http: aiohttp.ClientSession,
    server: CallServer,
    record: _CallRecord,
    config: CallsConfig,
    texts: UniqueTexts,
    rng: random.Random,
    deadline: float,
) -> None:
    """One call for the run: turns until `deadline`, each after the last one's `done` and a pause; a call that
    fails is recorded with its error."""
    try:
        async with controlled_call(http, server, record.protocol) as (peer, control):
            starts: list[int] = []
            try:
                await asyncio.sleep(rng.uniform(0.0, config.pause_s[1]))  # calls start out of step, as the swarm's
                while time.monotonic() < deadline:
                    utterance_id = f"u{record.utterances}"
                    record.utterances += 1
                    starts.append(len(peer.received.frames))
                    await speak(control, texts(rng.choice(UTTERANCES)), utterance_id)
                    started = await event(control, "audio_start", utterance_id, config.event_timeout_s)
                    await event(control, "done", utterance_id, config.event_timeout_s)
                    record.completed += 1
                    record.ttfa_ms.append(float(started["ttfa_ms"]))
                    await asyncio.sleep(rng.uniform(*config.pause_s))
            finally:
                record.max_gaps_ms.extend(_utterance_gaps(peer, starts))
                record.frames = len(peer.received.frames)
                expected = CALL_FRAME_BYTES[record.protocol]
                record.wrong_size_frames = sum(len(frame) != expected for _, frame in peer.received.frames)
    except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"[:200]


def _route_underruns(exposition: Exposition, protocol: str) -> float:
    return exposition.samples.get(sample(GAPS, route=CALL_ROUTES[protocol]), 0.0)


def _protocol_result(protocol: str, records: list[_CallRecord], underruns: float) -> ProtocolResult:
    gaps = [gap for record in records for gap in record.max_gaps_ms]
    return ProtocolResult(
        protocol=protocol,
        calls=len(records),
        failed_calls=sum(record.error is not None for record in records),
        utterances=sum(record.utterances for record in records),
        completed=sum(record.completed for record in records),
        server_ttfa=distribution([ttfa for record in records for ttfa in record.ttfa_ms]),
        max_frame_gap=distribution(gaps),
        gap_utterances=sum(gap > UNDERRUN_GAP_MS for gap in gaps),
        frames=sum(record.frames for record in records),
        wrong_size_frames=sum(record.wrong_size_frames for record in records),
        server_underruns=underruns,
        errors=[record.error for record in records if record.error is not None],
    )


async def run_calls(server: CallServer, config: CallsConfig, pids: Mapping[str, int | None]) -> CallsResult:
    """Run `config.calls` mixed calls against `server` for `config.duration_s`, and measure them."""
    rng = random.Random(config.seed)
    texts = UniqueTexts()
    records = [_CallRecord(CALL_PROTOCOLS[n % len(CALL_PROTOCOLS)]) for n in range(config.calls)]
    meter = CpuMeter({**pids, "loadgen": os.getpid()})
    async with aiohttp.ClientSession() as http:
        before = await scrape(server.url, http=http)
        meter.start()
        deadline = time.monotonic() + config.duration_s
        await asyncio.gather(
            *(_talk(http, server, record, config, texts, random.Random(rng.random()), deadline) for record in records)
        )
        cpu = meter.stop()
        after = await scrape(server.url, http=http)
    protocols = [
        _protocol_result(
            protocol,
            [record for record in records if record.protocol == protocol],
            _route_underruns(after, protocol) - _route_underruns(before, protocol),
        )
        for protocol in CALL_PROTOCOLS
    ]
    return CallsResult(config.calls, config.duration_s, protocols, cpu)


def _pair(figures: Mapping[str, float] | None, first: str, second: str) -> str:
    return "-" if figures is None else f"{figures[first]:.0f} / {figures[second]:.0f}"


def calls_report(body: Mapping[str, Any]) -> str:
    """The Markdown table of one `calls` run's results (its JSON body)."""
    rows = [
        "| protocol | calls (failed) | done / sent | server TTFA p50 / p95 ms | frame gap p95 / max ms "
        "| utterances with a gap | wrong-size frames | server underruns |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in body["protocols"]:
        rows.append(
            f"| {result['protocol']} | {result['calls']} ({result['failed_calls']}) "
            f"| {result['completed']} / {result['utterances']} "
            f"| {_pair(result['server_ttfa'], 'p50', 'p95')} | {_pair(result['max_frame_gap'], 'p95', 'max')} "
            f"| {result['gap_utterances']} | {result['wrong_size_frames']} | {result['server_underruns']:.0f} |"
        )
    cpu = body["cpu"]
    usage = ", ".join(
        f"{name} {cpu[name]['percent']:.0f}%" for name in ("server", "loadgen", "others") if cpu.get(name)
    )
    errors = [error for result in body["protocols"] for error in result["errors"]]
    lines = [f"{body['calls']} calls for {body['duration_s']:.0f} s; CPU of one core: {usage}", "", *rows]
    if errors:
        lines.extend(["", *(f"- failed call: {error}" for error in errors)])
    return "\n".join(lines)
