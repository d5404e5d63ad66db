"""`RayCore`: the engine core (`media_server.engine.seam.EngineCore`) as Ray Serve replicas, maybe on other hosts.

The gateway's engine front checks every request itself (text, parameters,
language, voice) and hands it here; `submit` returns a `RayStream`, which makes
the request one streaming call of the engine deployment (`replica.py`) on first
use. Each utterance's text travels as its sentences (`calls.segments_of`), and
every chunk comes back tagged with its sentence, so the stream always knows
the next audio the listener has not heard.

Failover: when the replica serving a stream dies (its actor, its node), the
stream re-issues the rest on another replica, from the sentence it was in:
with a deterministic backend (Piper) that sentence's samples the listener
already has are skipped there, so the audio goes on exactly; otherwise the
stream resumes at the next sentence. With no live replica left it fails with
`engine_unavailable` (503, retry), and the next request is served once the
cluster has restarted one.

Cancellation: closing a stream cancels its call; Serve cancels the replica's
generator, which aborts the engine request at its next step.

What the replicas report (stats, real-time slack, deadline misses, observer
events) reaches the gateway through the cluster's board (`board.py`), polled
every `POLL_INTERVAL_S`; `stats()` answers from the latest poll, summed over
the live replicas, and `replicas()` gives each one's own figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError

from media_server.config import Settings
from media_server.engine.observer import EngineObserver, NoObserver
from media_server.engine.stream import Result, ResultStream
from media_server.engine.types import (
    EngineStats,
    Pcm,
    ReplicaFigures,
    RequestTimings,
    Speech,
    SynthesisRequest,
    Voice,
    WordTiming,
)
from media_server.errors import Busy, EngineError, EngineUnavailable, MediaServerError
from media_server.gateway.events import replay
from media_server.gateway.ray import cluster
from media_server.gateway.ray.board import Reading, board_handle
from media_server.gateway.ray.calls import Audio, Call, Failure, Start, item_from_wire, segments_of
from media_server.gateway.ray.policy import Report
from media_server.gateway.wire import pcm_to_wire, stats_from_wire, update_timings, voice_from_wire

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
POLL_TIMEOUT_S = 5.0
MAX_FAILOVERS = 3
"""Re-issues of one request before it fails: each one follows a replica that died under it."""
FAILOVER_START_TIMEOUT_S = 3.0
"""How long a re-issued call may wait for a replica to start it before the request fails (`engine_unavailable`)."""


@dataclass(frozen=True)
class ReplicaReport:
    """One live replica's latest figures, as it posted them to the board."""

    replica: str
    node: str
    stats: EngineStats
    report: Report

    def figures(self) -> ReplicaFigures:
        stats = self.stats
        return ReplicaFigures(
            replica=self.replica,
            node=self.node,
            ready=stats.ready,
            active=stats.active,
            queued=stats.queued,
            queued_batch=stats.queued_batch,
            late_chunks=stats.late_chunks,
            slack_s=self.report.slack_s,
        )


class RayStream(ResultStream):
    """One request's audio from the engine replicas: one streaming call, re-issued elsewhere if its replica dies."""

    def __init__(self, core: RayCore, request: SynthesisRequest, voice: Voice, language: str) -> None:
        super().__init__(request, voice, language, RequestTimings())
        self._core = core
        self._call = Call(replace(request, voice=voice.id, language=language), tuple(segments_of(request.text)))
        self._response: Any = None
        self._replica: str | None = None
        self._deterministic = False
        self._segment = 0
        self._samples = 0
        """Samples of `_segment` delivered so far."""
        self._segment_start_s = 0.0
        """Seconds of audio the request delivered before `_segment` began."""
        self._played_out_at = 0.0
        self._failovers = 0

    async def _receive(self) -> Result:
        while True:
            if self._response is None:
                self._response = self._core.call(self._call, self.voice)
            # A re-issue that no replica takes up (Serve holds calls while it has none) is not waited for.
            timeout_s = FAILOVER_START_TIMEOUT_S if self._failovers and self._replica is None else None
            try:
                item = item_from_wire(await asyncio.wait_for(self._response.__anext__(), timeout_s))
            except TimeoutError:
                self._stop(early=True)
                return EngineUnavailable("no engine replica took up the rest of this utterance; retry shortly")
            except StopAsyncIteration:
                self._response = None
                return None
            except (RayActorError, BackPressureError) as exc:
                self._response = None
                failed = self._fail_over(exc)
                if failed is not None:
                    return failed
                continue
            except MediaServerError as exc:
                return exc
            except Exception as exc:  # a replica's own bug (RayTaskError): this request fails, the engine goes on
                log.exception("engine replica call failed for %s", self.request.id)
                return EngineError(f"synthesis failed: {type(exc).__name__}")
            match item:
                case Start():
                    self._replica, self._deterministic = item.replica, item.deterministic
                    if self._failovers == 0:
                        update_timings(self.timings, asdict(item.timings))
                case Audio():
                    if item.sent_at is not None:
                        self._core.record_transit(time.time() - item.sent_at)
                    return self._delivered(item.segment, item.pcm, item.words)
                case Failure():
                    return item.error

    def _delivered(self, segment: int, pcm: Pcm, words: tuple[WordTiming, ...]) -> Speech:
        """Record what the listener got; word times move from their segment's first sample to the request's."""
        if segment != self._segment:
            self._segment_start_s += self._samples / self.sample_rate
            self._segment, self._samples = segment, 0
        offset_s = self._segment_start_s
        self._samples += len(pcm)
        now = time.monotonic()
        self._played_out_at = max(self._played_out_at, now) + len(pcm) / self.sample_rate
        return Speech(pcm, tuple(replace(w, start_s=w.start_s + offset_s, end_s=w.end_s + offset_s) for w in words))

    def _fail_over(self, exc: Exception) -> MediaServerError | None:
        """Re-issue the rest of the request on another replica; the error to end with when that is not possible."""
        if isinstance(exc, BackPressureError):
            return Busy("every engine replica's queue is full; retry shortly", retry_after_s=1.0)
        if self._replica is not None:
            self._core.replica_died(self._replica)
        self._failovers += 1
        if self._failovers > MAX_FAILOVERS or not self._core.live_replicas():
            return EngineUnavailable("no engine replica is left to finish this utterance; retry shortly")
        segment, skip = self._segment, self._samples
        if skip and not self._deterministic:
            segment, skip = segment + 1, 0  # the rest of a sampled sentence cannot be resumed: the next one
        if segment >= len(self._call.segments):
            return None
        now = time.monotonic()
        log.warning(
            "replica %s died under %s; re-issuing from sentence %d (%d samples in) on another replica",
            self._replica,
            self.request.id,
            segment,
            skip,
        )
        request = replace(self._call.request, deadline=self._played_out_at if self._played_out_at > now else None)
        self._call = replace(self._call, request=request, first_segment=segment, skip_samples=skip)
        self._core.record_failover()
        self._replica = None
        return None

    def _took(self) -> None:
        """Serve's stream is the back-pressure: what is not read here is not pulled from the replica."""

    def _stop(self, early: bool) -> None:
        if self._response is not None:
            self._response.cancel()
            self._response = None


class RayCore:
    """The engine core as the cluster's engine deployment: the gateway holds its handle and owns no model."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local: cluster.LocalCluster | None = None
        self._handle: Any = None
        self._board: Any = None
        self._builtin: tuple[Voice, ...] = ()
        self._clones: dict[str, Voice] = {}
        self._reports: dict[str, ReplicaReport] = {}
        self._dead: set[str] = set()
        self._after = 0
        self._failovers = 0
        self._observer: EngineObserver = NoObserver()
        self._poller: asyncio.Task[None] | None = None
        self._connecting = False

    @property
    def backend_name(self) -> str:
        return self._settings.tts_backend

    @property
    def state(self) -> str:
        """`ready` (a live replica is loaded), `loading` (connecting, deploying, or replicas starting) or `idle`."""
        if self.health():
            return "ready"
        return "loading" if self._connecting or self._handle is not None else "idle"

    async def start(self) -> float | None:
        """Join the cluster (or start a local one), deploy the engine unless it runs, and wait for its voices."""
        started = time.monotonic()
        self._connecting = True
        try:
            address = self._settings.ray_address
            if address is None:
                replicas = max(self._settings.engine_replicas, self._settings.engine_max_replicas)
                cpus = replicas * cluster.replica_resources(self._settings).get("num_cpus", 1)
                self._local = cluster.LocalCluster(cpus=int(cpus))
                address = await self._local.start()
            await asyncio.to_thread(cluster.join, address)
            self._handle = await asyncio.to_thread(cluster.deploy, self._settings)
            self._board = await asyncio.to_thread(board_handle)
            builtin = await self._handle.options(method_name="voices").remote()
            self._builtin = tuple(voice_from_wire(fields) for fields in builtin)
        finally:
            self._connecting = False
        self._poller = asyncio.create_task(self._poll_forever(), name="ray-engine-poll")
        return time.monotonic() - started

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._handle is not None or self._local is not None:
            await asyncio.to_thread(cluster.leave, self._local is not None)
        if self._local is not None:
            await self._local.stop()

    def observe(self, observer: EngineObserver) -> None:
        """Replay the replicas' engine events into `observer`."""
        self._observer = observer

    def health(self) -> bool:
        """At least one live replica, loaded and not stuck."""
        return any(report.stats.ready for report in self._live_reports())

    def wake(self) -> None:
        """Replicas are the cluster's to keep: nothing to start here."""

    def voices(self) -> Sequence[Voice]:
        """The backend's own voices, then the voices cloned anywhere in the cluster."""
        return (*self._builtin, *self._clones.values())

    def submit(self, request: SynthesisRequest, voice: Voice, language: str) -> RayStream:
        """The request's stream, or `engine_unavailable` at once when no replica is live."""
        if self._handle is not None and not self.live_replicas():
            raise EngineUnavailable("no engine replica is running; the cluster is restarting them, retry shortly")
        return RayStream(self, request, voice, language)

    def call(self, call: Call, voice: Voice) -> Any:
        """Start one streaming call of the engine deployment (a clone goes where it is loaded: multiplexed id)."""
        options: dict[str, Any] = {"method_name": "synthesize", "stream": True}
        if voice.id in self._clones:
            options["multiplexed_model_id"] = voice.id
        return self._handle.options(**options).remote(call.to_wire())

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """Clone a voice on one replica; it leaves the reference on the board for the others."""
        method = self._handle.options(method_name="create_voice")
        voice = voice_from_wire(await method.remote(pcm_to_wire(reference), sample_rate, transcript, name))
        self._clones[voice.id] = voice
        return voice

    async def delete_voice(self, voice_id: str) -> None:
        await self._handle.options(method_name="delete_voice").remote(voice_id)
        self._clones.pop(voice_id, None)

    def stats(self) -> EngineStats:
        """The live replicas' figures summed (the longest step: the longest of any), and each one's own."""
        reports = self._live_reports()
        idle = EngineStats.idle(self._settings.tts_backend, self._settings.max_queue, self._settings.max_batch_queue)
        if not reports:
            return replace(idle, failovers=self._failovers)
        combined: dict[str, Any] = {}
        for field in fields(EngineStats):
            values = [getattr(report.stats, field.name) for report in reports]
            if field.name == "backend":
                combined[field.name] = values[0]
            elif field.name == "ready":
                combined[field.name] = any(values)
            elif field.name == "longest_step_s":
                combined[field.name] = max(values)
            elif field.name == "replicas":
                combined[field.name] = tuple(report.figures() for report in reports)
            elif field.name == "failovers":
                combined[field.name] = self._failovers
            else:
                combined[field.name] = sum(values)
        return EngineStats(**combined)

    @property
    def failovers(self) -> int:
        """Requests re-issued on another replica after theirs died."""
        return self._failovers

    def record_failover(self) -> None:
        self._failovers += 1

    def record_transit(self, seconds: float) -> None:
        """One chunk's transit from its replica (the wall-clock time it left there to now)."""
        self._observer.observe_chunk_transit(seconds)

    def live_replicas(self) -> list[str]:
        return [report.replica for report in self._live_reports()]

    def replica_died(self, replica: str) -> None:
        """A call's replica died under it: not live, whatever its last post said."""
        self._dead.add(replica)

    def _live_reports(self) -> list[ReplicaReport]:
        return [report for replica, report in self._reports.items() if replica not in self._dead]

    async def _poll_forever(self) -> None:
        while True:
            try:
                reading: Reading = await asyncio.wait_for(self._board.read.remote(self._after), POLL_TIMEOUT_S)
            except Exception as exc:  # the board is restarting (its node went): the next poll finds it again
                log.debug("engine board poll failed: %r", exc)
            else:
                self._after = reading.last_event
                self._reports = {
                    replica: ReplicaReport(replica, str(post["node"]), stats_from_wire(post["stats"]), report)
                    for replica, post in reading.replicas.items()
                    if (report := Report.from_stats(post["report"])) is not None
                }
                self._clones = {voice.id: voice for voice in map(voice_from_wire, reading.clones)}
                replay(reading.events, self._observer)
            await asyncio.sleep(POLL_INTERVAL_S)
