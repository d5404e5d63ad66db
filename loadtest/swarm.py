"""A swarm of real aiortc peers talking to the server like conversations, one load level at a time.

Each peer speaks an utterance, listens until it has played (`done`), pauses a random 0.5-2 s and
speaks again, until the level's duration is up. In burst mode every peer speaks at the same
moment, all wait for the slowest, and then they pause together. The level's result holds every
utterance's figures (see `loadtest.utterance`), their summary, the CPU of the server and of this
load generator, the generator's own event-loop lag, and the server's own account of the level from
its `/metrics` (underruns, latency histograms) when it has one.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import aiohttp

from clients.metrics import HistogramSummary, ServerUnderruns, scrape_if_any, since
from clients.rtc import RECEIVER_DELAY_S, Event, SpeechClient
from loadtest.profiling import ProfileSummary
from loadtest.resources import CpuMeter, CpuUsage, LoopLagProbe, rss_mib
from loadtest.stats import Distribution, distribution
from loadtest.texts import UTTERANCES, UniqueTexts
from loadtest.utterance import Turn, UtteranceRecord, measure

# After `done`, the last frames still have the network and the receiver's jitter buffer to cross.
SETTLE_S = RECEIVER_DELAY_S + 0.2
CONNECT_BATCH = 8
STARTS = ("audio_start", "error")
ENDINGS = ("done", "error", "cancelled")


@dataclass(frozen=True)
class SwarmConfig:
    peers: int
    duration_s: float
    burst: bool = False
    pause_s: tuple[float, float] = (0.5, 2.0)
    seed: int = 7
    voice: str | None = None
    utterance_timeout_s: float = 30.0


@dataclass(frozen=True)
class RtcSummary:
    """A level's figures over all its utterances (TTFA and stretch in ms)."""

    utterances: int
    completed: int
    outcomes: dict[str, int]
    server_ttfa: Distribution | None
    client_ttfa: Distribution | None
    client_ttfa_corrected: Distribution | None
    stretch: Distribution | None
    playout_stretch: Distribution | None
    max_gap: Distribution | None
    underrun_utterances: int
    sessions_with_underruns: int
    server_underruns: ServerUnderruns | None


@dataclass(frozen=True)
class LevelResult:
    peers: int
    mode: str
    duration_s: float
    summary: RtcSummary
    cpu: dict[str, CpuUsage | None]
    loadgen_loop_lag: Distribution | None
    utterances: list[UtteranceRecord] = field(repr=False)
    server_histograms: dict[str, HistogramSummary] = field(default_factory=dict)
    profile: ProfileSummary | None = None
    server_rss_mib: tuple[float | None, float | None] = (None, None)
    """The server's resident memory before the level and after it (its peers hung up)."""


def summarize(records: list[UtteranceRecord], server_underruns: ServerUnderruns | None) -> RtcSummary:
    def values(name: str) -> list[float]:
        return [v for r in records if (v := getattr(r, name)) is not None]

    outcomes: dict[str, int] = {}
    for record in records:
        outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
    underruns = [r for r in records if r.underrun]
    return RtcSummary(
        utterances=len(records),
        completed=outcomes.get("done", 0),
        outcomes=outcomes,
        server_ttfa=distribution(values("server_ttfa_ms")),
        client_ttfa=distribution(values("client_ttfa_ms")),
        client_ttfa_corrected=distribution(values("client_ttfa_corrected_ms")),
        stretch=distribution(values("stretch_ms")),
        playout_stretch=distribution(values("playout_stretch_ms")),
        max_gap=distribution(values("max_gap_ms")),
        underrun_utterances=len(underruns),
        sessions_with_underruns=len({r.peer for r in underruns}),
        server_underruns=server_underruns,
    )


def _failure(event: Event) -> str:
    code = event.get("code")
    return f"{event['type']}:{code}" if code else str(event["type"])


async def _speak(client: SpeechClient, peer: int, utterance_id: str, text: str, timeout_s: float) -> Turn:
    sent = client.send({"type": "speak", "text": text, "id": utterance_id})
    turn = Turn(peer=peer, id=utterance_id, chars=len(text), sent_at=sent, outcome="timeout")
    try:
        first_at, first = await client.wait_first(STARTS, utterance_id, timeout_s, after=sent)
        if first["type"] == "error":
            return replace(turn, outcome=_failure(first), ended_at=first_at)
        turn = replace(turn, audio_start=first, audio_start_at=first_at)
        ended_at, last = await client.wait_first(ENDINGS, utterance_id, timeout_s, after=sent)
    except TimeoutError:
        return turn
    done = last if last["type"] == "done" else None
    return replace(turn, outcome="done" if done else _failure(last), done=done, ended_at=ended_at)


class _Peer:
    """One swarm member: its client, its own random choices, and the turns it has taken."""

    def __init__(self, index: int, client: SpeechClient, config: SwarmConfig, unique: UniqueTexts) -> None:
        self.index = index
        self.client = client
        self._unique = unique
        self.rng = random.Random(config.seed * 1000 + index)
        self.turns: list[Turn] = []
        self._timeout_s = config.utterance_timeout_s

    async def speak(self) -> None:
        utterance_id = f"p{self.index}-u{len(self.turns) + 1}"
        text = self._unique(self.rng.choice(UTTERANCES))
        self.turns.append(await _speak(self.client, self.index, utterance_id, text, self._timeout_s))


async def _pause(rng: random.Random, config: SwarmConfig, stop_at: float) -> None:
    await asyncio.sleep(min(rng.uniform(*config.pause_s), max(0.0, stop_at - time.monotonic())))


async def _converse(peer: _Peer, config: SwarmConfig, stop_at: float) -> None:
    await asyncio.sleep(peer.rng.uniform(0.0, config.pause_s[1]))  # peers start out of step
    while time.monotonic() < stop_at:
        await peer.speak()
        await _pause(peer.rng, config, stop_at)


async def _burst(peers: list[_Peer], config: SwarmConfig, stop_at: float) -> None:
    rng = random.Random(config.seed)
    while time.monotonic() < stop_at:
        await asyncio.gather(*(peer.speak() for peer in peers))
        await _pause(rng, config, stop_at)


async def _connect(clients: list[SpeechClient]) -> None:
    for start in range(0, len(clients), CONNECT_BATCH):
        await asyncio.gather(*(client.connect() for client in clients[start : start + CONNECT_BATCH]))


async def _hang_up(http: aiohttp.ClientSession, url: str, clients: list[SpeechClient]) -> None:
    for client in clients:
        if client.session_id is not None:
            async with http.delete(f"{url}/rtc/sessions/{client.session_id}"):
                pass
    await asyncio.gather(*(client.close() for client in clients))


async def run_level(url: str, config: SwarmConfig, pids: Mapping[str, int | None]) -> LevelResult:
    """Run `config.peers` conversations (or bursts) for `config.duration_s` against `url`."""
    clients = [SpeechClient(url, config.voice) for _ in range(config.peers)]
    async with aiohttp.ClientSession() as http:
        try:
            await _connect(clients)
            unique = UniqueTexts()
            peers = [_Peer(index, client, config, unique) for index, client in enumerate(clients)]
            before = await scrape_if_any(http, url)
            rss_before = rss_mib(pids.get("server"))
            meter = CpuMeter({**pids, "loadgen": os.getpid()})
            meter.start()
            started = time.monotonic()
            stop_at = started + config.duration_s
            async with LoopLagProbe() as lag:
                if config.burst:
                    await _burst(peers, config, stop_at)
                else:
                    await asyncio.gather(*(_converse(peer, config, stop_at) for peer in peers))
            cpu = meter.stop()
            elapsed_s = time.monotonic() - started
            await asyncio.sleep(SETTLE_S)
            after = await scrape_if_any(http, url)
        finally:
            await _hang_up(http, url, clients)
    rss_after = rss_mib(pids.get("server"))
    records = [measure(turn, peer.client.received, started, SETTLE_S) for peer in peers for turn in peer.turns]
    server_underruns, histograms = since(before, after) if before and after else (None, {})
    return LevelResult(
        peers=config.peers,
        mode="burst" if config.burst else "conversation",
        duration_s=round(elapsed_s, 1),
        summary=summarize(records, server_underruns),
        cpu=cpu,
        loadgen_loop_lag=lag.summary(),
        utterances=records,
        server_histograms=histograms,
        server_rss_mib=(rss_before, rss_after),
    )
