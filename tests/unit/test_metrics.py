"""Metrics: fed through the public methods, read back by parsing the Prometheus exposition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from media_server.engine.types import EngineStats, Priority, ReplicaFigures
from media_server.observability.metrics import (
    CLIENT_CLOSED_STATUS,
    SESSION_ROUTES,
    STREAMING_ROUTES,
    TTFA_BUCKETS,
    UNMATCHED_ROUTE,
    Metrics,
    metrics_handler,
)

STATS = EngineStats(
    backend="piper",
    ready=True,
    active=2,
    queued=5,
    parked=1,
    max_queue=64,
    completed=10,
    cancelled=3,
    failed=1,
    refused=4,
    steps=40,
    last_batch=2,
    audio_s=12.5,
    busy_s=2.5,
    cache_bytes=4096,
    late_chunks=2,
    failovers=1,
    replicas=(
        ReplicaFigures("r1", "node-a", True, 1, 3, 1, 2, 1.5),
        ReplicaFigures("r2", "node-b", True, 1, 2, 0, 0, 1.8),
    ),
)


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def scrape(metrics: Metrics) -> dict[str, Metric]:
    return families(generate_latest(metrics.registry).decode())


def value(scraped: dict[str, Metric], sample: str, **labels: str) -> float:
    for family in scraped.values():
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return s.value
    raise KeyError(f"no sample {sample}{labels}")


def test_two_servers_in_one_process_have_separate_registries() -> None:
    first, second = Metrics(), Metrics()
    first.record_underrun("webrtc", 0.02)
    assert value(scrape(first), "media_server_underruns_total", route="webrtc") == 1
    assert value(scrape(second), "media_server_underruns_total", route="webrtc") == 0


def test_every_known_label_combination_exists_at_zero_from_the_start() -> None:
    scraped = scrape(Metrics())
    for route in STREAMING_ROUTES:
        assert value(scraped, "media_server_ttfa_seconds_count", route=route) == 0
    for route in SESSION_ROUTES:
        assert value(scraped, "media_server_sessions", route=route) == 0
        assert value(scraped, "media_server_underruns_total", route=route) == 0
        assert value(scraped, "media_server_chunk_gap_seconds_count", route=route) == 0
    for priority in ("realtime", "batch"):
        assert value(scraped, "media_server_queue_wait_seconds_count", priority=priority) == 0
    assert value(scraped, "media_server_cache_hits_total", cache="audio") == 0
    engine = scrape(Metrics(engine_stats=lambda: STATS))
    for outcome in ("completed", "cancelled", "failed", "refused", "no_audio"):
        assert value(engine, "media_server_engine_requests_total", outcome=outcome) >= 0


def test_engine_counters_are_read_from_the_latest_snapshot_at_scrape_time() -> None:
    snapshots = [STATS]
    metrics = Metrics(engine_stats=lambda: snapshots[-1])
    scraped = scrape(metrics)
    assert value(scraped, "media_server_engine_info", backend="piper") == 1
    assert value(scraped, "media_server_engine_ready") == 1
    assert value(scraped, "media_server_engine_active_requests") == 2
    assert value(scraped, "media_server_engine_queued_requests") == 5
    assert value(scraped, "media_server_engine_parked_requests") == 1
    assert value(scraped, "media_server_engine_queue_limit") == 64
    assert value(scraped, "media_server_engine_last_batch_size") == 2
    assert value(scraped, "media_server_engine_steps_total") == 40
    assert value(scraped, "media_server_engine_requests_total", outcome="completed") == 10
    assert value(scraped, "media_server_engine_requests_total", outcome="refused") == 4
    assert value(scraped, "media_server_audio_seconds_total") == 12.5
    assert value(scraped, "media_server_engine_busy_seconds_total") == 2.5
    assert value(scraped, "media_server_cache_bytes") == 4096

    snapshots.append(replace(STATS, completed=11, audio_s=13.0, ready=False))
    scraped = scrape(metrics)
    # Cumulative values are exposed as they are, never added up across scrapes.
    assert value(scraped, "media_server_engine_requests_total", outcome="completed") == 11
    assert value(scraped, "media_server_audio_seconds_total") == 13.0
    assert value(scraped, "media_server_engine_ready") == 0


def test_registering_does_not_read_the_snapshot() -> None:
    reads: list[EngineStats] = []

    def snapshot() -> EngineStats:
        reads.append(STATS)
        return STATS

    metrics = Metrics(engine_stats=snapshot)
    assert reads == []
    scrape(metrics)
    assert len(reads) == 1


def test_ttfa_buckets_span_10_ms_to_2_s() -> None:
    metrics = Metrics()
    metrics.observe_ttfa("webrtc", 0.045)
    metrics.observe_ttfa("webrtc", 0.9)
    scraped = scrape(metrics)
    buckets = [
        float(s.labels["le"])
        for s in scraped["media_server_ttfa_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["route"] == "webrtc"
    ]
    assert buckets[0] == 0.01 and buckets[-2] == 2.0 and buckets[-1] == float("inf")
    assert len(buckets) == len(TTFA_BUCKETS) + 1
    assert value(scraped, "media_server_ttfa_seconds_bucket", route="webrtc", le="0.05") == 1
    assert value(scraped, "media_server_ttfa_seconds_count", route="webrtc") == 2
    assert value(scraped, "media_server_ttfa_seconds_sum", route="webrtc") == pytest.approx(0.945)


def test_underruns_count_gaps_and_seconds_of_silence_by_route() -> None:
    metrics = Metrics()
    metrics.record_underrun("webrtc", 0.04)
    metrics.record_underrun("webrtc", 0.02)
    metrics.record_underrun("ws", 0.1)
    scraped = scrape(metrics)
    assert value(scraped, "media_server_underruns_total", route="webrtc") == 2
    assert value(scraped, "media_server_underrun_seconds_total", route="webrtc") == pytest.approx(0.06)
    assert value(scraped, "media_server_underruns_total", route="ws") == 1


def test_edge_histograms() -> None:
    metrics = Metrics()
    metrics.observe_chunk_gap("sse", 0.03)
    metrics.observe_track_lag(0.003)
    metrics.observe_track_lag(-0.001)  # early is not late
    scraped = scrape(metrics)
    assert value(scraped, "media_server_chunk_gap_seconds_bucket", route="sse", le="0.04") == 1
    assert value(scraped, "media_server_chunk_gap_seconds_bucket", route="sse", le="0.02") == 0
    assert value(scraped, "media_server_track_lag_seconds_count") == 2
    assert value(scraped, "media_server_track_lag_seconds_sum") == pytest.approx(0.003)


def test_sessions_are_live_only_inside_the_block_and_peers_and_calls_are_read_at_scrape_time() -> None:
    peers, calls = [3], [2]
    metrics = Metrics(live_peers=lambda: peers[-1], live_calls=lambda: calls[-1])
    with metrics.session("webrtc"), metrics.session("audiosocket"):
        assert value(scrape(metrics), "media_server_sessions", route="webrtc") == 1
        assert value(scrape(metrics), "media_server_sessions", route="audiosocket") == 1
    scraped = scrape(metrics)
    assert value(scraped, "media_server_sessions", route="webrtc") == 0
    assert value(scraped, "media_server_peers") == 3 and value(scraped, "media_server_calls") == 2
    peers.append(0)
    calls.append(0)
    assert value(scrape(metrics), "media_server_peers") == 0 and value(scrape(metrics), "media_server_calls") == 0
    assert value(scrape(metrics), "media_server_event_loop_tasks") == 0  # no loop runs here


@pytest.mark.asyncio
async def test_the_event_loops_tasks_are_counted_at_scrape_time() -> None:
    metrics = Metrics()
    alone = value(scrape(metrics), "media_server_event_loop_tasks")
    waiting = asyncio.create_task(asyncio.Event().wait())
    try:
        assert alone >= 1 and value(scrape(metrics), "media_server_event_loop_tasks") == alone + 1
    finally:
        waiting.cancel()


def test_engine_events() -> None:
    metrics = Metrics()
    metrics.observe_queue_wait(Priority.REALTIME, 0.002)
    metrics.observe_queue_wait(Priority.BATCH, 1.5)
    # Four sequences got 80 ms of audio each from a 40 ms step: half of real time.
    metrics.observe_step(0.04, batch_size=4, audio_s=0.32)
    metrics.observe_step(0.01, batch_size=1, audio_s=0.0)
    metrics.record_cache_lookup("audio", hit=True)
    metrics.record_cache_lookup("audio", hit=False)
    metrics.record_cache_lookup("audio", hit=False)
    metrics.record_worker_restart()
    metrics.observe_chunk_transit(0.0008)
    scraped = scrape(metrics)
    assert value(scraped, "media_server_queue_wait_seconds_count", priority="realtime") == 1
    assert value(scraped, "media_server_queue_wait_seconds_sum", priority="batch") == 1.5
    assert value(scraped, "media_server_engine_step_seconds_count") == 2
    assert value(scraped, "media_server_engine_batch_size_bucket", le="4.0") == 2
    assert value(scraped, "media_server_engine_batch_size_bucket", le="2.0") == 1
    # A step that made no audio has no real-time factor.
    assert value(scraped, "media_server_engine_real_time_factor_count") == 1
    assert value(scraped, "media_server_engine_real_time_factor_sum") == pytest.approx(0.5)
    assert value(scraped, "media_server_cache_hits_total", cache="audio") == 1
    assert value(scraped, "media_server_cache_misses_total", cache="audio") == 2
    assert value(scraped, "media_server_engine_worker_restarts_total") == 1
    assert value(scraped, "media_server_engine_chunk_transit_seconds_bucket", le="0.00075") == 0
    assert value(scraped, "media_server_engine_chunk_transit_seconds_bucket", le="0.001") == 1


EXPECTED_FAMILIES = {
    "counter": {
        "media_server_http_requests",
        "media_server_engine_requests",
        "media_server_engine_steps",
        "media_server_audio_seconds",
        "media_server_engine_busy_seconds",
        "media_server_cache_hits",
        "media_server_cache_misses",
        "media_server_engine_worker_restarts",
        "media_server_underruns",
        "media_server_underrun_seconds",
        "media_server_track_resyncs",
        "media_server_engine_late_chunks",
        "media_server_engine_failovers",
        "media_server_replica_late_chunks",
    },
    "gauge": {
        "media_server_cache_bytes",
        "media_server_engine_info",
        "media_server_engine_ready",
        "media_server_engine_active_requests",
        "media_server_engine_queued_requests",
        "media_server_engine_parked_requests",
        "media_server_engine_queue_limit",
        "media_server_engine_queued_batch_requests",
        "media_server_engine_batch_queue_limit",
        "media_server_engine_last_batch_size",
        "media_server_sessions",
        "media_server_peers",
        "media_server_calls",
        "media_server_event_loop_tasks",
        "media_server_replica_ready",
        "media_server_replica_active_requests",
        "media_server_replica_queued_requests",
        "media_server_replica_queued_batch_requests",
        "media_server_replica_slack_seconds",
    },
    "histogram": {
        "media_server_ttfa_seconds",
        "media_server_queue_wait_seconds",
        "media_server_engine_step_seconds",
        "media_server_engine_real_time_factor",
        "media_server_engine_batch_size",
        "media_server_engine_chunk_transit_seconds",
        "media_server_chunk_gap_seconds",
        "media_server_track_lag_seconds",
    },
}


def test_each_replica_has_its_own_figures() -> None:
    scraped = scrape(Metrics(engine_stats=lambda: STATS, live_peers=lambda: 0))
    queued = {sample.labels["replica"]: sample for sample in scraped["media_server_replica_queued_requests"].samples}
    assert {name: sample.value for name, sample in queued.items()} == {"r1": 3, "r2": 2}
    assert queued["r1"].labels["node"] == "node-a"
    slack = [sample.value for sample in scraped["media_server_replica_slack_seconds"].samples]
    assert slack == [1.5, 1.8]
    assert scraped["media_server_engine_failovers"].samples[0].value == 1


def test_names_follow_prometheus_conventions() -> None:
    metrics = Metrics(engine_stats=lambda: STATS, live_peers=lambda: 0, live_calls=lambda: 0)
    metrics.observe_step(0.01, batch_size=1, audio_s=0.1)
    scraped = scrape(metrics)
    # The text format lists a sample's creation time as a separate `_created` gauge.
    ours = {
        name: family
        for name, family in scraped.items()
        if name.startswith("media_server_") and not name.endswith("_created")
    }
    by_type: dict[str, set[str]] = {}
    for name, family in ours.items():
        by_type.setdefault(family.type, set()).add(name)
        assert family.documentation, name
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name == f"{name}_total", sample.name
            else:
                assert not sample.name.endswith("_total"), sample.name
    assert by_type == EXPECTED_FAMILIES
    unitless = {"media_server_engine_real_time_factor", "media_server_engine_batch_size"}
    assert all(name.endswith("_seconds") for name in EXPECTED_FAMILIES["histogram"] - unitless)
    # Each registry carries the process collectors too.
    assert "process_resident_memory_bytes" in scraped


class Routes:
    """A tiny app: a templated route, an error route, a crashing route and a hanging route."""

    def __init__(self) -> None:
        self.hanging = asyncio.Event()
        self.hung_up = asyncio.Event()

    async def item(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"]})

    async def bad(self, request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text="no")

    async def crash(self, request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    async def hang(self, request: web.Request) -> web.Response:
        self.hanging.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.hung_up.set()
        raise AssertionError("unreachable")


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Routes]]:
    metrics = Metrics()
    routes = Routes()
    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_get("/items/{id}", routes.item)
    app.router.add_get("/bad", routes.bad)
    app.router.add_get("/crash", routes.crash)
    app.router.add_get("/hang", routes.hang)
    app.router.add_get("/metrics", metrics_handler(metrics))
    async with TestClient(TestServer(app, handler_cancellation=True)) as client:
        yield client, routes


@pytest.mark.asyncio
async def test_requests_are_counted_by_route_template_and_status(
    served: tuple[TestClient[web.Request, web.Application], Routes],
) -> None:
    client, _ = served
    for path in ("/items/1", "/items/2", "/bad", "/crash", "/no/such/page", "/items/3/extra"):
        async with client.get(path):
            pass
    async with client.post("/items/1"):
        pass
    async with client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        scraped = families(await resp.text())
    assert value(scraped, "media_server_http_requests_total", route="/items/{id}", status="200") == 2
    assert value(scraped, "media_server_http_requests_total", route="/bad", status="400") == 1
    assert value(scraped, "media_server_http_requests_total", route="/crash", status="500") == 1
    assert value(scraped, "media_server_http_requests_total", route=UNMATCHED_ROUTE, status="404") == 2
    assert value(scraped, "media_server_http_requests_total", route=UNMATCHED_ROUTE, status="405") == 1
    paths = {s.labels["route"] for s in scraped["media_server_http_requests"].samples}
    assert paths == {"/items/{id}", "/bad", "/crash", UNMATCHED_ROUTE}


@pytest.mark.asyncio
async def test_a_client_that_hangs_up_is_counted_as_499(
    served: tuple[TestClient[web.Request, web.Application], Routes],
) -> None:
    client, routes = served
    request = asyncio.create_task(client.get("/hang"))
    await routes.hanging.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await routes.hung_up.wait()
    async with client.get("/metrics") as resp:
        scraped = families(await resp.text())
    assert value(scraped, "media_server_http_requests_total", route="/hang", status=str(CLIENT_CLOSED_STATUS)) == 1
