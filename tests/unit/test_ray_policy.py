"""How Ray mode routes calls and sizes the engine (`media_server.gateway.ray.policy`), on plain figures."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from media_server.config import Settings
from media_server.engine.types import Priority
from media_server.errors import ConfigError
from media_server.gateway.ray.policy import (
    TARGET_BATCH_OCCUPANCY,
    ReplicaLoad,
    Report,
    ScalingSignals,
    desired_replicas,
    rank,
)

IDLE = Report(
    report=1.0,
    slack_s=1.95,
    first_audio_estimate_s=0.05,
    added_call_s=0.05,
    realtime_calls=0.0,
    batch_calls=0.0,
    batch_capacity=16.0,
    late_chunks=0.0,
)


def load(
    name: str, report: Report | None = IDLE, realtime: int = 0, batch: int = 0, open_rt: int = 0, open_batch: int = 0
) -> ReplicaLoad:
    return ReplicaLoad(name, report, realtime, batch, open_rt, open_batch)


def first(loads: list[ReplicaLoad], priority: Priority = Priority.REALTIME) -> str:
    return rank(loads, priority, random.Random(1))[0]


def test_real_time_goes_to_the_most_slack_even_where_more_calls_run() -> None:
    # "busy" runs fewer calls, but they are fresh real-time ones: a new one would wait behind them there.
    busy = replace(IDLE, slack_s=1.6, realtime_calls=2.0)
    batch_only = replace(IDLE, slack_s=1.94, batch_calls=6.0)
    assert first([load("busy", busy), load("batch-only", batch_only)]) == "batch-only"


def test_calls_sent_since_the_last_report_count_against_a_replica() -> None:
    # Both reported idle; the calls this router sent "a" since make "b" the freer one.
    assert first([load("a", realtime=2), load("b")]) == "b"
    # Spread evenly, one call at a time, as a burst arrives between two reports.
    sent = {"a": 0, "b": 0, "c": 0}
    for _ in range(9):
        sent[first([load(name, realtime=count) for name, count in sent.items()])] += 1
    assert sent == {"a": 3, "b": 3, "c": 3}


def test_replicas_about_as_free_go_by_their_calls() -> None:
    a = replace(IDLE, slack_s=1.950, realtime_calls=3.0)
    b = replace(IDLE, slack_s=1.945, realtime_calls=1.0)
    assert first([load("a", a), load("b", b)]) == "b"


def test_a_replica_that_has_not_reported_counts_as_idle_but_not_more() -> None:
    loaded = replace(IDLE, slack_s=1.2, realtime_calls=8.0)
    assert first([load("old", loaded), load("new", None)]) == "new"
    assert first([load("old", IDLE, realtime=1), load("new", None, realtime=2)]) == "old"


def test_batch_goes_where_real_time_has_room_and_a_full_replica_last() -> None:
    realtime_heavy = replace(IDLE, slack_s=1.3, realtime_calls=10.0)
    assert first([load("rt", realtime_heavy), load("free", IDLE)], Priority.BATCH) == "free"
    full = replace(IDLE, batch_calls=16.0)
    assert rank([load("full", full), load("rt", realtime_heavy)], Priority.BATCH)[-1] == "full"
    # A queue made full by the calls sent since the report is full too.
    assert (
        first([load("a", replace(IDLE, batch_calls=15.0), batch=1), load("b", realtime_heavy)], Priority.BATCH) == "b"
    )


def test_batch_spreads_by_occupancy_among_equally_free_replicas() -> None:
    assert (
        first([load("a", replace(IDLE, batch_calls=5.0)), load("b", replace(IDLE, batch_calls=2.0))], Priority.BATCH)
        == "b"
    )


def test_a_report_survives_serves_dict_of_floats_and_a_missing_one_is_none() -> None:
    assert Report.from_stats(IDLE.to_stats()) == IDLE
    assert Report.from_stats({}) is None
    assert replace(IDLE, batch_calls=4.0).batch_occupancy == 0.25


def signals(estimate_s: float = 0.05, occupancy: float = 0.0, late: float = 0.0) -> ScalingSignals:
    return ScalingSignals(first_audio_estimate_s=estimate_s, batch_occupancy=occupancy, late_chunks=late)


def test_the_count_follows_the_mean_first_audio_estimate() -> None:
    assert desired_replicas(2, [signals(0.2), signals(0.1)], target_first_audio_s=0.1) == pytest.approx(3.0)
    assert desired_replicas(3, [signals(0.03)] * 3, target_first_audio_s=0.1) == pytest.approx(0.9)


def test_the_count_follows_batch_occupancy_when_it_presses_more() -> None:
    full = signals(0.01, occupancy=2 * TARGET_BATCH_OCCUPANCY)
    assert desired_replicas(1, [full], target_first_audio_s=0.1) == pytest.approx(2.0)


def test_a_deadline_miss_asks_for_one_more_replica_at_least() -> None:
    assert desired_replicas(2, [signals(0.01), signals(0.01, late=1)], target_first_audio_s=0.1) == 3.0


def test_without_figures_the_count_stays() -> None:
    assert desired_replicas(2, [], target_first_audio_s=0.1) == 2.0


def test_the_replica_range_is_checked_where_settings_are_built() -> None:
    assert Settings(engine_replicas=2, engine_max_replicas=4).engine_autoscales
    assert not Settings(engine_replicas=2).engine_autoscales
    with pytest.raises(ConfigError, match=r"ENGINE_MAX_REPLICAS=1: .*ENGINE_REPLICAS \(2\)"):
        Settings(engine_replicas=2, engine_max_replicas=1)
    with pytest.raises(ConfigError, match=r"ENGINE_TARGET_FIRST_AUDIO_MS=0.0: must be in \[1, inf\]"):
        Settings.from_env({"ENGINE_TARGET_FIRST_AUDIO_MS": "0"})


def test_calls_that_ended_since_the_last_report_give_their_room_back() -> None:
    # "a" reported a full batch queue, but three of this router's calls there have ended since.
    full = replace(IDLE, batch_calls=16.0, realtime_calls=2.0)
    assert first([load("a", full, batch=-3), load("b", replace(IDLE, batch_calls=14.0))], Priority.BATCH) == "a"
    assert load("a", full, realtime=-5).realtime_calls == 0.0
    assert load("a", full, realtime=-1).slack_s(0.0) == pytest.approx(IDLE.slack_s + IDLE.added_call_s)


def test_a_replica_runs_at_least_the_calls_this_router_has_open_there() -> None:
    # The report was made before the router's last two calls reached "a": it counts one, the router has three open.
    stale = replace(IDLE, batch_calls=1.0, realtime_calls=1.0)
    assert load("a", stale, open_rt=3, open_batch=3).batch_calls == 3.0
    assert first([load("a", stale, open_batch=3), load("b", replace(IDLE, batch_calls=2.0))], Priority.BATCH) == "b"
    assert load("a", stale, open_rt=3).slack_s(0.0) == pytest.approx(IDLE.slack_s - 2 * IDLE.added_call_s)
