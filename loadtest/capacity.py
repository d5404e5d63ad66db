"""The capacity search: the most live WebRTC sessions the server carries with zero underruns, no
failed utterance, and p95 server TTFA under the target (150 ms).

Levels grow by `step` from `start` until one fails (or `maximum` passes), then the gap between the
last pass and the first fail is bisected down to one session. Each level is a fresh swarm run;
on a noisy machine a level near the edge can pass once and fail the next time, so the answer is
the largest level that passed, with every level's figures kept to show how clear the edge was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from loadtest.swarm import LevelResult, SwarmConfig

RunLevel = Callable[[SwarmConfig], Awaitable[LevelResult]]


@dataclass(frozen=True)
class Criteria:
    max_p95_ttfa_ms: float = 150.0


@dataclass(frozen=True)
class Verdict:
    peers: int
    passed: bool
    reasons: list[str]


@dataclass(frozen=True)
class CapacityResult:
    capacity: int
    criteria: Criteria
    verdicts: list[Verdict]
    levels: list[LevelResult]


def judge(level: LevelResult, criteria: Criteria) -> Verdict:
    """Whether `level` meets `criteria`, and if not, every way it missed."""
    summary = level.summary
    reasons: list[str] = []
    failed = summary.utterances - summary.completed
    if summary.completed == 0:
        reasons.append("no utterance completed")
    if failed:
        reasons.append(f"{failed} of {summary.utterances} utterances failed: {summary.outcomes}")
    if summary.underrun_utterances:
        reasons.append(f"{summary.underrun_utterances} utterances underran")
    if summary.server_underruns is not None and summary.server_underruns.gaps:
        reasons.append(f"the server counted {summary.server_underruns.gaps:.0f} underruns")
    p95 = summary.server_ttfa.p95 if summary.server_ttfa else None
    if p95 is not None and p95 >= criteria.max_p95_ttfa_ms:
        reasons.append(f"p95 server TTFA {p95:.0f} ms >= {criteria.max_p95_ttfa_ms:.0f} ms")
    return Verdict(level.peers, not reasons, reasons)


async def search(
    run_level: RunLevel, config: SwarmConfig, criteria: Criteria, start: int, step: int, maximum: int
) -> CapacityResult:
    """Step up from `start` by `step` to the first failing level, then bisect the gap."""
    levels: list[LevelResult] = []
    verdicts: list[Verdict] = []

    async def passes(peers: int) -> bool:
        level = await run_level(replace(config, peers=peers))
        verdict = judge(level, criteria)
        levels.append(level)
        verdicts.append(verdict)
        return verdict.passed

    best, failed = 0, None
    peers = start
    while peers <= maximum:
        if not await passes(peers):
            failed = peers
            break
        best = peers
        peers += step
    while failed is not None and failed - best > 1:
        middle = (best + failed) // 2
        if await passes(middle):
            best = middle
        else:
            failed = middle
    return CapacityResult(capacity=best, criteria=criteria, verdicts=verdicts, levels=levels)
