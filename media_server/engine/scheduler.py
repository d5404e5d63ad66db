"""Priority scheduling of synthesis steps over the engine's worker threads.

Every admitted request is a job. Worker threads repeatedly take a batch of
jobs, open a backend sequence for those that have none, and advance them all
by one `step` (the event loop never runs model work). Backends keep each step
short (Piper: `STEP_BUDGET_MS`; Qwen3-TTS: one codec frame), so a worker is
free again within one step.

Which jobs step next is policy as data (`RunQueue`). Real-time jobs come
before batch ones. Within a priority, a job is either fresh (a new utterance
waiting for its first audio) or playing (it has audio out, or it continues an
utterance whose earlier audio is still playing). A playing job is due its
own work up to its next audio (the backend's `lead_s`) plus `REFILL_MARGIN_S`
before its listener would run dry. The order is:
1. playing jobs that are due, earliest first: a listener never hears a gap
   while the engine has capacity;
2. fresh jobs, oldest first: a new utterance's first step takes the next free
   worker, ahead of every listener that still has audio buffered;
3. playing jobs not yet due, earliest first, so idle capacity fills buffers.
Under overload, new utterances wait (and the TTFA budget refuses them at
admission) rather than anyone's playing audio breaking up. Jobs join and
leave batches at step boundaries (continuous batching); a job needs a free
sequence slot (`Backend.max_sequences`) before it is first opened, and the
most urgent waiting job gets the next free slot.

A job whose audio is in the cache is answered from it at its first step, all
chunks at once, without a sequence or a model step.

Back-pressure: a job whose consumer has not taken `max_outstanding` chunks
is parked (not stepped) until it does, so a slow reader costs a bounded
amount of memory and no model time.

Admission is bounded per priority, so a flood of batch work never takes the
capacity real-time work needs: past `max_queue` unfinished real-time jobs, or
`max_batch_queue` batch ones, `submit` refuses at once with `Busy`. A
cancelled job leaves the queue count at once; its sequence is closed by a
worker at the next step boundary (backends are not thread-safe).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from media_server.engine.backends.base import Backend
from media_server.engine.observer import EngineObserver, NoObserver
from media_server.engine.pipeline import RequestPipeline
from media_server.engine.run_queue import REFILL_MARGIN_S, Job, RunQueue, Sink, StepResult
from media_server.engine.types import Priority, Speech
from media_server.errors import Busy, NoAudio

__all__ = ["REFILL_MARGIN_S", "Scheduler", "SchedulerCounters", "StepResult"]

log = logging.getLogger(__name__)


@dataclass
class SchedulerCounters:
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    silent: int = 0
    refused: int = 0
    steps: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0
    last_batch: int = 0
    late: int = 0
    """Chunks of a playing job made after its listener ran dry (a deadline missed: a gap)."""


class Scheduler:
    """Runs a backend's steps on `workers` threads in priority/deadline order."""

    def __init__(
        self,
        backend: Backend[Any],
        workers: int,
        max_queue: int,
        max_outstanding: int = 8,
        observer: EngineObserver | None = None,
        max_batch_queue: int | None = None,
    ) -> None:
        self._backend = backend
        self._workers = workers
        self.max_queue = max_queue
        self.max_batch_queue = max_queue if max_batch_queue is None else max_batch_queue
        self._max_outstanding = max_outstanding
        self.observer: EngineObserver = observer or NoObserver()
        self._cond = threading.Condition()
        self._queue = RunQueue()
        self._jobs: dict[str, Job] = {}
        self._open = 0
        self._running = 0
        self._order = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.counters = SchedulerCounters()
        self._step_s = 0.0
        self._first_audio_work_s = 0.0
        self._running_since: dict[int, float] = {}

    def start(self) -> None:
        self._stopping = False
        for n in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"engine-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def submit(self, pipeline: RequestPipeline, sink: Sink) -> None:
        request = pipeline.request
        limit = self.max_queue if request.priority == Priority.REALTIME else self.max_batch_queue
        with self._cond:
            if sum(1 for job in self._jobs.values() if job.priority == request.priority) >= limit:
                self.counters.refused += 1
                kind = "real-time" if request.priority == Priority.REALTIME else "batch"
                raise Busy(
                    f"the {kind} synthesis queue is full ({limit} requests); retry shortly",
                    retry_after_s=1.0,
                )
            self._order += 1
            job = Job(pipeline, sink, self._order)
            self._jobs[request.id] = job
            self._queue.push(job)
            self._cond.notify()

    def observe(self, observer: EngineObserver) -> None:
        """Report per-step events to `observer` from now on."""
        with self._cond:
            self.observer = observer

    def refuse(self) -> None:
        """Count a request refused before it reached the queue (admission by the engine's budget)."""
        with self._cond:
            self.counters.refused += 1

    def abort(self, request_id: str) -> None:
        with self._cond:
            job = self._jobs.pop(request_id, None)
            if job is None:
                return
            job.cancelled = True
            self.counters.cancelled += 1
            if job.parked:
                self._queue.push(job)
            self._cond.notify()

    def consumed(self, request_id: str) -> None:
        """The consumer took one delivered chunk; a parked job may step again."""
        with self._cond:
            job = self._jobs.get(request_id)
            if job is None:
                return
            job.outstanding -= 1
            if job.parked and job.outstanding < self._max_outstanding:
                job.parked = False
                self._queue.push(job)
                self._cond.notify()

    def estimate_first_audio_s(self, ahead: int = 0) -> float:
        """When a real-time request admitted now would get its first audio, from measured step times.

        Before its first step go the fresh real-time jobs already waiting (their work
        up to first audio), `ahead` more such jobs (requests on their way here), and
        the playing ones that fall due meanwhile (a step each), spread over the
        engine's parallel capacity, and about half a step of work already running;
        then its own work up to its first audio.
        """
        with self._cond:
            now = time.monotonic()
            capacity = self._workers * self._backend.max_batch
            first, step = self._first_audio_work_s, self._step_s
            realtime = [job for job in self._queue if job.priority == Priority.REALTIME]
            fresh = ahead + sum(1 for job in realtime if job.fresh)
            wait = (fresh * first + self._running / 2 * step) / capacity
            due = sum(1 for job in realtime if not job.fresh and job.due_at <= now + wait + first)
            return wait + due * step / capacity + first

    @property
    def pending(self) -> int:
        """Admitted jobs not yet finished."""
        with self._cond:
            return len(self._jobs)

    @property
    def pending_batch(self) -> int:
        """Admitted batch jobs not yet finished (what `max_batch_queue` bounds)."""
        with self._cond:
            return sum(1 for job in self._jobs.values() if job.priority == Priority.BATCH)

    @property
    def parked(self) -> int:
        with self._cond:
            return sum(1 for job in self._jobs.values() if job.parked)

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def _take_batch(self, wait: bool = True) -> tuple[list[Job], list[Job]] | None:
        """Up to `max_batch` of the most urgent jobs, and cancelled ones to close; waits for work if `wait`."""
        with self._cond:
            while not self._stopping:
                batch, skipped, closing = self._select()
                for job in skipped:
                    self._queue.push(job)
                if batch or closing:
                    self._running += len(batch)
                    return batch, closing
                if not wait:
                    return None
                self._cond.wait()
            return None

    def _select(self) -> tuple[list[Job], list[Job], list[Job]]:
        batch: list[Job] = []
        skipped: list[Job] = []
        closing: list[Job] = []
        limit = self._backend.max_sequences
        now = time.monotonic()
        while len(batch) < self._backend.max_batch and (job := self._queue.pop(now)) is not None:
            if job.cancelled:
                if job.opened:
                    job.opened = False
                    closing.append(job)
                continue
            if not job.opened:
                if limit is not None and self._open >= limit:
                    skipped.append(job)
                    continue
                job.opened = True
                self._open += 1
            batch.append(job)
        return batch, skipped, closing

    def run_pending(self) -> bool:
        """Take and run one batch on the calling thread; False when nothing was runnable.

        The worker threads loop on this; tests drive a scheduler without threads
        (never `start`ed) by calling it, so policy is checked step by step.
        """
        work = self._take_batch(wait=False)
        if work is None:
            return False
        self._execute(*work)
        return True

    def _run(self) -> None:
        while (work := self._take_batch()) is not None:
            self._execute(*work)

    def _execute(self, batch: list[Job], closing: list[Job]) -> None:
        for job in closing:
            self._close(job)
        if batch:
            started = time.monotonic()
            thread = threading.get_ident()
            self._running_since[thread] = started
            try:
                results = self._step(batch)
            finally:
                del self._running_since[thread]
            self._after_step(batch, results, time.monotonic() - started)

    @property
    def longest_step_s(self) -> float:
        """How long the oldest step now running has been running (0 when none is): a stuck model shows here."""
        starts = self._running_since.copy().values()  # copy(): atomic under the GIL, unlike iterating
        return time.monotonic() - min(starts) if starts else 0.0

    def _step(self, batch: list[Job]) -> list[StepResult]:
        results: list[StepResult] = [None] * len(batch)
        on_model: list[int] = []
        for i, job in enumerate(batch):
            try:
                if job.sequence is None and job.replay is None:
                    self._begin(job)
            except Exception as exc:
                log.exception("could not start %s", job.id)
                results[i] = exc
                continue
            if job.replay is None:
                on_model.append(i)
        if on_model:
            try:
                made = self._backend.step([batch[i].sequence for i in on_model])
                for i, pcm in zip(on_model, made, strict=True):
                    job = batch[i]
                    job.pipeline.timed(self._backend.words(job.sequence))
                    if pcm is not None:
                        results[i] = job.pipeline.process(pcm)
                        job.lead_s = self._backend.lead_s(job.sequence)
            except Exception as exc:
                log.exception("synthesis step failed for %s", ", ".join(batch[i].id for i in on_model))
                for i in on_model:
                    results[i] = exc
        return results

    def _begin(self, job: Job) -> None:
        pipeline = job.pipeline
        prepared, cached = pipeline.begin()
        self.observer.observe_queue_wait(pipeline.request.priority, pipeline.timings.queue_wait_s)
        if pipeline.cache_hit is not None:
            self.observer.record_cache_lookup("audio", pipeline.cache_hit)
        if cached is not None:
            job.replay = cached
        else:
            job.sequence = self._backend.open(prepared, pipeline.voice)

    def _close(self, job: Job) -> None:
        if job.sequence is not None:
            try:
                self._backend.close(job.sequence)
            except Exception:
                log.exception("closing the sequence of %s failed", job.id)
            job.sequence = None
        with self._cond:
            self._open -= 1
            self._cond.notify()

    def _after_step(self, batch: list[Job], results: list[StepResult], step_s: float) -> None:
        deliveries: list[tuple[Job, StepResult]] = []
        finished: list[tuple[Job, StepResult]] = []
        replays = [job for job in batch if job.replay is not None]
        stepped = len(batch) - len(replays)
        made_s = 0.0
        with self._cond:
            self._running -= len(batch)
            if stepped:
                self.counters.steps += 1
                self.counters.busy_s += step_s
                self.counters.last_batch = stepped
                self._step_s = _ewma(self._step_s, step_s)
            now = time.monotonic()
            for job, result in zip(batch, results, strict=True):
                if job.replay is not None:
                    finished.append((job, None))
                    if not job.cancelled:
                        self._finish(job, None)
                        deliveries.extend((job, speech) for speech in job.replay)
                        deliveries.append((job, None))
                    continue
                if job.first_audio_at is None:
                    job.work_s += step_s
                    job.pipeline.timings.first_step_s = job.work_s
                if result is None and not job.cancelled and job.first_audio_at is None:
                    self.counters.silent += 1
                    log.warning("%s made no audio at all (its whole output was silence)", job.id)
                    result = NoAudio("the voice made no audio for this text (its whole output was silence)")
                if job.cancelled or not isinstance(result, Speech):
                    finished.append((job, result))
                    if not job.cancelled:
                        self._finish(job, result)
                        tail = job.pipeline.finish() if result is None else None
                        if tail is not None:
                            deliveries.append((job, tail))
                        deliveries.append((job, result))
                    continue
                if len(result.pcm):
                    if job.priority == Priority.REALTIME and not job.fresh and now > job.deadline:
                        self.counters.late += 1
                    seconds = len(result.pcm) / job.pipeline.voice.sample_rate
                    if job.first_audio_at is None:
                        self._first_audio_work_s = _ewma(self._first_audio_work_s, job.work_s)
                    made_s += seconds
                    job.made(seconds, now)
                if len(result.pcm) or result.words:
                    job.outstanding += 1
                    deliveries.append((job, result))
                if job.outstanding >= self._max_outstanding:
                    job.parked = True
                else:
                    self._queue.push(job)
            self.counters.audio_s += made_s
            self._cond.notify_all()
        if stepped:
            self.observer.observe_step(step_s, stepped, made_s)
        for job, result in finished:
            if result is None and not job.cancelled and job.replay is None:
                job.pipeline.complete()
            self._close(job)
        for job, result in deliveries:
            job.sink(result)

    def _finish(self, job: Job, result: StepResult) -> None:
        self._jobs.pop(job.id, None)
        if result is None:
            self.counters.completed += 1
        else:
            self.counters.failed += 1


def _ewma(average: float, sample: float, weight: float = 0.2) -> float:
    return sample if average == 0.0 else average + weight * (sample - average)
