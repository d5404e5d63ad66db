"""The capacity search steps up, then bisects to the edge, and says why a level failed."""

from __future__ import annotations

import pytest

from loadtest.capacity import Criteria, judge, search
from loadtest.stats import distribution
from loadtest.swarm import LevelResult, RtcSummary, SwarmConfig


def level(peers: int, p95_ttfa_ms: float, underruns: int = 0, failed: int = 0) -> LevelResult:
    summary = RtcSummary(
        utterances=10,
        completed=10 - failed,
        outcomes={"done": 10 - failed, **({"error:busy": failed} if failed else {})},
        server_ttfa=distribution([p95_ttfa_ms] * 10),
        client_ttfa=None,
        client_ttfa_corrected=None,
        stretch=None,
        playout_stretch=None,
        max_gap=None,
        underrun_utterances=underruns,
        sessions_with_underruns=min(underruns, peers),
        server_underruns=None,
    )
    return LevelResult(peers, "conversation", 20.0, summary, {}, None, [])


def test_a_level_fails_for_every_missed_criterion() -> None:
    assert judge(level(8, 90), Criteria()).passed
    verdict = judge(level(30, 180, underruns=2, failed=1), Criteria())
    assert not verdict.passed
    assert len(verdict.reasons) == 3
    assert "1 of 10 utterances failed" in verdict.reasons[0]
    assert verdict.reasons[1:] == ["2 utterances underran", "p95 server TTFA 180 ms >= 150 ms"]


@pytest.mark.asyncio
async def test_search_steps_up_then_bisects_to_the_last_passing_level() -> None:
    tried: list[int] = []

    async def run(config: SwarmConfig) -> LevelResult:
        tried.append(config.peers)
        return level(config.peers, p95_ttfa_ms=10.0 * config.peers)  # passes up to 14 sessions

    result = await search(run, SwarmConfig(peers=0, duration_s=1), Criteria(), start=4, step=8, maximum=64)
    assert tried == [4, 12, 20, 16, 14, 15]
    assert result.capacity == 14
    assert [v.passed for v in result.verdicts] == [True, True, False, False, True, False]
