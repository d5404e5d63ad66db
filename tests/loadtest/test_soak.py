"""The soak: a short real run against the server, and the growth verdict on made-up series."""

from __future__ import annotations

import pytest

from loadtest.soak import RSS_FLOOR_BYTES_PER_SESSION, Sample, growth, run_soak, slope
from tests.server import RunningServer


def series(values: list[int]) -> list[Sample]:
    return [Sample(at_s=float(i), sessions=i * 10, rss_bytes=v, open_fds=20) for i, v in enumerate(values)]


def test_slope_is_least_squares() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(5, 1)]) == 0.0


def test_growth_that_keeps_its_pace_is_a_leak() -> None:
    leaking = series([100_000_000 + i * 500_000 for i in range(30)])
    verdict = growth(leaking, "rss_bytes", RSS_FLOOR_BYTES_PER_SESSION)
    assert verdict["last_third_per_session"] == pytest.approx(50_000)
    assert not verdict["flattens"]


def test_growth_that_stops_flattens() -> None:
    warming = series([100_000_000 + min(i, 8) * 5_000_000 for i in range(30)])
    assert growth(warming, "rss_bytes", RSS_FLOOR_BYTES_PER_SESSION)["flattens"]
    assert growth(warming, "open_fds", 0.01) == {
        "first_third_per_session": 0.0,
        "last_third_per_session": 0.0,
        "flattens": True,
    }


@pytest.mark.asyncio
async def test_a_short_soak_completes_every_session(server: RunningServer) -> None:
    result = await run_soak(server.url, sessions=12, concurrency=3, pid=server.process.pid, sample_every_s=0.2)
    assert (result["completed"], result["failed"]) == (12, 0), result["errors"]
    assert result["rss_start_bytes"] > 0 and result["fds_start"] > 0
    assert len(result["samples"]) >= 2 and result["samples"][-1]["sessions"] == 12
    assert set(result["rss_growth"]) == {"first_third_per_session", "last_third_per_session", "flattens"}
