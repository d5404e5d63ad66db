"""`python -m loadtest ray`'s own arithmetic: a listener's longest silence, the chunk transit from two scrapes.

The run itself needs a Ray cluster in a loopback-only namespace and minutes of
the machine: it is run by hand (loadtest/RESULTS.md), not here.
"""

from __future__ import annotations

import pytest

from clients.metrics import parse
from loadtest.ray_mode import Stream, transit_ms

RATE = 1000  # samples per second: 2000 bytes are one second of audio


def test_a_stream_that_keeps_ahead_of_its_listener_has_no_silence() -> None:
    stream = Stream(status=200, sent_at=0.0, arrivals=[(0.1, 2000), (0.5, 2000), (1.9, 2000)], sample_rate=RATE)
    assert stream.ttfa_ms == pytest.approx(100.0)
    assert stream.longest_silence_ms() == 0.0


def test_the_longest_silence_is_the_longest_wait_for_audio_after_the_buffer_ran_dry() -> None:
    # One second played from 0.1 s; the next piece comes at 1.4 s (0.3 s of silence), then 0.5 s plays
    # until 1.9 s and the last piece comes at 2.0 s (0.1 s).
    arrivals = [(0.1, 2000), (1.4, 1000), (2.0, 2000)]
    stream = Stream(status=200, sent_at=0.0, arrivals=arrivals, sample_rate=RATE)
    assert stream.longest_silence_ms() == pytest.approx(300.0)
    assert Stream().longest_silence_ms() == 0.0 and Stream().ttfa_ms is None


def test_the_gap_across_a_moment_is_from_the_last_audio_before_it_to_the_first_after() -> None:
    stream = Stream(status=200, arrivals=[(0.1, 10), (0.2, 10), (0.65, 10), (0.7, 10)], sample_rate=RATE)
    assert stream.gap_across_ms(0.3) == pytest.approx(450.0)
    assert stream.gap_across_ms(0.05) is None and stream.gap_across_ms(1.0) is None


def exposition(counts: dict[str, int], total: float) -> str:
    name = "media_server_engine_chunk_transit_seconds"
    lines = [f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{le="{le}"}} {count}' for le, count in counts.items()]
    return "\n".join([*lines, f"{name}_count {counts['+Inf']}", f"{name}_sum {total}", ""])


def test_the_transit_is_what_happened_between_the_two_scrapes() -> None:
    before = parse(exposition({"0.001": 10, "0.002": 10, "0.005": 10, "+Inf": 10}, 0.005))
    # 100 more chunks: 50 under 1 ms, 49 in (1, 2] ms, one in (2, 5] ms.
    after = parse(exposition({"0.001": 60, "0.002": 109, "0.005": 110, "+Inf": 110}, 0.155))
    transit = transit_ms(before, after)
    assert transit is not None and transit.n == 100
    assert transit.p50 == pytest.approx(1.0)
    assert 1.0 < transit.p95 < 2.0 and 1.9 < transit.p99 <= 2.0
    assert transit.max == 5.0 and transit.mean == pytest.approx(1.5)
    assert transit_ms(before, before) is None
