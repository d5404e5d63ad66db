"""Prometheus metrics in a registry owned by one `Metrics` object (one per app, none global).

Three kinds of input:
- edge events, recorded by routes, sessions and tracks: TTFA, chunk gaps,
  underruns, track lag, live sessions, and HTTP requests (by `middleware`);
- engine events, recorded through methods the engine is handed as callbacks
  (it never imports this module): queue wait, step time with its real-time
  factor and batch size, cache hits and misses, worker restarts;
- the engine's cumulative counters, read from an `EngineStats` snapshot at
  scrape time by `EngineStatsCollector`, never incremented here.

`GET /metrics` is served by `metrics_handler(metrics)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from media_server.engine.types import EngineStats, Priority, ReplicaFigures

__all__ = ["EngineStatsCollector", "Metrics", "metrics_handler"]

# Time to first audio: targets are p50 < 60 ms and p95 < 150 ms, the tail reaches 2 s.
TTFA_BUCKETS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2)
# Admission to first step: about nothing for real-time work, seconds for batch work under load.
QUEUE_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One engine step: a codec frame on a GPU (ms) up to a long Piper segment (s).
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
# Compute seconds per second of audio; above 1 a listener underruns.
REAL_TIME_FACTOR_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0, 1.5, 2.0, 5.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# Fine below 5 ms: the Ray transport's per-chunk target (`loadtest ray` reads its percentiles from these).
CHUNK_TRANSIT_BUCKETS = (
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25
)  # fmt: skip
# Between consecutive audio chunks of one utterance; 20 ms is one frame.
CHUNK_GAP_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
# How late a paced 20 ms frame leaves; past one frame a listener may hear it.
TRACK_LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5)

# The route label of a request no route matched (404, 405): bounded, unlike the raw path.
UNMATCHED_ROUTE = "unmatched"
SESSION_ROUTES = (
    "webrtc",
    "ws",
    "telephony",
    "telnyx",
    "plivo",
    "vonage",
    "audiosocket",
    "jambonz",
    "cartesia",
    "wyoming",
)
"""The `route` labels of sessions (the names the transports pass in)."""
STREAMING_ROUTES = (*SESSION_ROUTES, "speech", "speech_sse", "sse", "pcm", "jambonz_http", "cartesia_bytes")
"""Every route that reports a time to first audio."""
CACHES = ("audio",)
# Status of a request whose client went away before its handler finished (nginx's convention).
CLIENT_CLOSED_STATUS = 499


def _live_tasks() -> int:
    """Tasks alive on the running event loop (0 when scraped outside one)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


class EngineStatsCollector:
    """Reads the engine's latest `EngineStats` at scrape time; its counters are cumulative."""

    def __init__(self, snapshot: Callable[[], EngineStats]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Sequence[Metric]:
        """The families without samples, so registering never reads the snapshot."""
        return self._families(None)

    def collect(self) -> Sequence[Metric]:
        return self._families(self._snapshot())

    @staticmethod
    def _families(stats: EngineStats | None) -> Sequence[Metric]:
        info = InfoMetricFamily("media_server_engine", "The speech backend the engine runs.", labels=["backend"])
        ready = GaugeMetricFamily("media_server_engine_ready", "1 when the backend is loaded and warm.")
        active = GaugeMetricFamily("media_server_engine_active_requests", "Requests in a synthesis step now.")
        queued = GaugeMetricFamily("media_server_engine_queued_requests", "Requests admitted and not finished.")
        parked = GaugeMetricFamily(
            "media_server_engine_parked_requests", "Requests paused until their reader catches up."
        )
        limit = GaugeMetricFamily(
            "media_server_engine_queue_limit", "Admitted real-time requests beyond which it refuses."
        )
        queued_batch = GaugeMetricFamily(
            "media_server_engine_queued_batch_requests", "Batch requests admitted and not finished."
        )
        batch_limit = GaugeMetricFamily(
            "media_server_engine_batch_queue_limit", "Admitted batch requests beyond which it refuses."
        )
        last_batch = GaugeMetricFamily(
            "media_server_engine_last_batch_size", "Sequences advanced by the latest synthesis step."
        )
        outcomes = CounterMetricFamily(
            "media_server_engine_requests_total",
            "Requests the engine finished, by outcome.",
            labels=["outcome"],
        )
        audio = CounterMetricFamily("media_server_audio_seconds_total", "Seconds of audio the engine produced.")
        steps = CounterMetricFamily("media_server_engine_steps_total", "Synthesis steps the engine ran.")
        busy = CounterMetricFamily(
            "media_server_engine_busy_seconds_total", "Seconds the engine spent in synthesis steps."
        )
        cache_bytes = GaugeMetricFamily("media_server_cache_bytes", "Bytes of audio held by the output cache.")
        late = CounterMetricFamily(
            "media_server_engine_late_chunks",
            "Chunks of a playing request made after its listener had played everything before them.",
        )
        failovers = CounterMetricFamily(
            "media_server_engine_failovers", "Requests re-issued on another replica after theirs died (MODE=ray)."
        )
        per_replica = _ReplicaFamilies()
        if stats is not None:
            info.add_metric([stats.backend], {})
            ready.add_metric([], float(stats.ready))
            active.add_metric([], stats.active)
            queued.add_metric([], stats.queued)
            parked.add_metric([], stats.parked)
            limit.add_metric([], stats.max_queue)
            queued_batch.add_metric([], stats.queued_batch)
            batch_limit.add_metric([], stats.max_batch_queue)
            last_batch.add_metric([], stats.last_batch)
            for outcome, count in (
                ("completed", stats.completed),
                ("cancelled", stats.cancelled),
                ("failed", stats.failed),
                ("refused", stats.refused),
                ("no_audio", stats.silent),
            ):
                outcomes.add_metric([outcome], count)
            steps.add_metric([], stats.steps)
            audio.add_metric([], stats.audio_s)
            busy.add_metric([], stats.busy_s)
            cache_bytes.add_metric([], stats.cache_bytes)
            late.add_metric([], stats.late_chunks)
            failovers.add_metric([], stats.failovers)
            for figures in stats.replicas:
                per_replica.add(figures)
        return [
            info,
            ready,
            active,
            queued,
            parked,
            limit,
            queued_batch,
            batch_limit,
            last_batch,
            outcomes,
            steps,
            audio,
            busy,
            cache_bytes,
            late,
            failovers,
            *per_replica.families(),
        ]


class _ReplicaFamilies:
    """Each engine replica's own figures (`MODE=ray`), labelled by replica and node."""

    def __init__(self) -> None:
        labels = ["replica", "node"]
        self._ready = GaugeMetricFamily("media_server_replica_ready", "1 when the replica is loaded.", labels=labels)
        self._active = GaugeMetricFamily(
            "media_server_replica_active_requests", "Requests in a synthesis step now.", labels=labels
        )
        self._queued = GaugeMetricFamily(
            "media_server_replica_queued_requests", "Requests admitted and not finished.", labels=labels
        )
        self._batch = GaugeMetricFamily(
            "media_server_replica_queued_batch_requests", "Batch requests admitted and not finished.", labels=labels
        )
        self._slack = GaugeMetricFamily(
            "media_server_replica_slack_seconds",
            "The first-audio budget minus the replica's estimate of a new real-time request's first audio.",
            labels=labels,
        )
        self._late = CounterMetricFamily(
            "media_server_replica_late_chunks", "Chunks made after their listener ran dry.", labels=labels
        )

    def add(self, figures: ReplicaFigures) -> None:
        labels = [figures.replica, figures.node]
        self._ready.add_metric(labels, float(figures.ready))
        self._active.add_metric(labels, figures.active)
        self._queued.add_metric(labels, figures.queued)
        self._batch.add_metric(labels, figures.queued_batch)
        self._slack.add_metric(labels, figures.slack_s)
        self._late.add_metric(labels, figures.late_chunks)

    def families(self) -> list[Metric]:
        return [self._ready, self._active, self._queued, self._batch, self._slack, self._late]


class Metrics:
    """Every metric of one server, in its own `registry`.

    `engine_stats`, `live_peers` and `live_calls` are read at scrape time, as
    is the count of event-loop tasks; route labels are short fixed names
    chosen by the caller (`webrtc`, `ws`, `sse`, `pcm`, `speech`, ...), never
    user input.
    """

    def __init__(
        self,
        engine_stats: Callable[[], EngineStats] | None = None,
        live_peers: Callable[[], int] | None = None,
        live_calls: Callable[[], int] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        if engine_stats is not None:
            self.registry.register(EngineStatsCollector(engine_stats))
        r = self.registry
        self._requests = Counter(
            "media_server_http_requests",
            "HTTP requests by matched route and status.",
            ["route", "status"],
            registry=r,
        )
        self._ttfa = Histogram(
            "media_server_ttfa_seconds",
            "From receiving the text to the first audio leaving the server.",
            ["route"],
            buckets=TTFA_BUCKETS,
            registry=r,
        )
        self._queue_wait = Histogram(
            "media_server_queue_wait_seconds",
            "From admission to the first synthesis step, by priority.",
            ["priority"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self._step = Histogram(
            "media_server_engine_step_seconds",
            "Duration of one synthesis step.",
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self._real_time_factor = Histogram(
            "media_server_engine_real_time_factor",
            "Step time over the audio each sequence of the batch got from it.",
            buckets=REAL_TIME_FACTOR_BUCKETS,
            registry=r,
        )
        self._chunk_transit = Histogram(
            "media_server_engine_chunk_transit_seconds",
            "From an engine replica sending a chunk to this gateway receiving it (MODE=ray; wall clocks).",
            buckets=CHUNK_TRANSIT_BUCKETS,
            registry=r,
        )
        self._batch_size = Histogram(
            "media_server_engine_batch_size",
            "Sequences advanced by one synthesis step.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self._cache_hits = Counter("media_server_cache_hits", "Cache lookups that hit.", ["cache"], registry=r)
        self._cache_misses = Counter("media_server_cache_misses", "Cache lookups that missed.", ["cache"], registry=r)
        self._worker_restarts = Counter(
            "media_server_engine_worker_restarts", "Engine workers restarted after dying.", registry=r
        )
        self._underruns = Counter(
            "media_server_underruns", "Gaps of silence inside an utterance.", ["route"], registry=r
        )
        self._underrun_seconds = Counter(
            "media_server_underrun_seconds",
            "Seconds of silence played inside utterances.",
            ["route"],
            registry=r,
        )
        self._chunk_gap = Histogram(
            "media_server_chunk_gap_seconds",
            "Time between consecutive audio chunks of one utterance.",
            ["route"],
            buckets=CHUNK_GAP_BUCKETS,
            registry=r,
        )
        self._track_resyncs = Counter(
            "media_server_track_resyncs",
            "Times a track fell more than half a second behind (an event-loop stall) and restarted its schedule.",
            registry=r,
        )
        self._track_lag = Histogram(
            "media_server_track_lag_seconds",
            "How late a paced audio frame left the track.",
            buckets=TRACK_LAG_BUCKETS,
            registry=r,
        )
        self._sessions = Gauge("media_server_sessions", "Live speech sessions by route.", ["route"], registry=r)
        self._create_known_series()
        if live_peers is not None:
            peers = Gauge("media_server_peers", "Live WebRTC peer connections.", registry=r)
            peers.set_function(live_peers)
        if live_calls is not None:
            calls = Gauge("media_server_calls", "Live telephony calls reachable by a control channel.", registry=r)
            calls.set_function(live_calls)
        tasks = Gauge("media_server_event_loop_tasks", "Tasks alive on the server's event loop.", registry=r)
        tasks.set_function(_live_tasks)

    def _create_known_series(self) -> None:
        """Every known label combination at zero from the start: a rate over a series that appears late is wrong."""
        for route in STREAMING_ROUTES:
            self._ttfa.labels(route=route)
        for route in SESSION_ROUTES:
            self._chunk_gap.labels(route=route)
            self._sessions.labels(route=route)
            self._underruns.labels(route=route)
            self._underrun_seconds.labels(route=route)
        for priority in Priority:
            self._queue_wait.labels(priority=priority.name.lower())
        for cache in CACHES:
            self._cache_hits.labels(cache=cache)
            self._cache_misses.labels(cache=cache)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts each request by its matched route's canonical path and its final status."""
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_STATUS
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else UNMATCHED_ROUTE
            self._requests.labels(route=route, status=str(status)).inc()

    def observe_ttfa(self, route: str, seconds: float) -> None:
        self._ttfa.labels(route=route).observe(seconds)

    def observe_chunk_gap(self, route: str, seconds: float) -> None:
        self._chunk_gap.labels(route=route).observe(seconds)

    def observe_track_lag(self, seconds: float) -> None:
        self._track_lag.observe(max(0.0, seconds))

    def record_track_resync(self) -> None:
        self._track_resyncs.inc()

    def record_underrun(self, route: str, silence_s: float) -> None:
        """One gap of silence inside an utterance, `silence_s` long."""
        self._underruns.labels(route=route).inc()
        self._underrun_seconds.labels(route=route).inc(silence_s)

    @contextmanager
    def session(self, route: str) -> Iterator[None]:
        """Counts a live session on `route` for the duration of the block."""
        gauge = self._sessions.labels(route=route)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def observe_queue_wait(self, priority: Priority, seconds: float) -> None:
        self._queue_wait.labels(priority=priority.name.lower()).observe(seconds)

    def observe_step(self, seconds: float, batch_size: int, audio_s: float) -> None:
        """One synthesis step that advanced `batch_size` sequences and made `audio_s` of audio in all."""
        self._step.observe(seconds)
        self._batch_size.observe(batch_size)
        if audio_s > 0:
            self._real_time_factor.observe(seconds * batch_size / audio_s)

    def record_cache_lookup(self, cache: str, hit: bool) -> None:
        (self._cache_hits if hit else self._cache_misses).labels(cache=cache).inc()

    def observe_chunk_transit(self, seconds: float) -> None:
        self._chunk_transit.observe(seconds)

    def record_worker_restart(self) -> None:
        self._worker_restarts.inc()


def metrics_handler(metrics: Metrics) -> Handler:
    """The `GET /metrics` handler: the registry in the format the scraper asks for."""
    return make_aiohttp_handler(metrics.registry)
