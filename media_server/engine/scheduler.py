"""Priority scheduling of synthesis steps over the engine's worker threads.

Every admitted request is a job whose backend steps are run one at a time by
a pool of worker threads (the event loop never runs model work). Which job
steps next is policy as data: a heap ordered by `(priority, deadline, seq)`.
Real-time jobs come before batch ones; among equals, the job whose listener
runs out of audio soonest goes first (earliest deadline first). A new job's
deadline is its arrival, so it beats jobs that already have audio buffered:
that is what keeps time-to-first-audio low under load.

Admission is bounded: past `max_queue` unfinished jobs, `submit` refuses at
once with `Busy`. A cancelled job is forgotten immediately if it is waiting,
or right after its current step if a worker is running it.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from media_server.engine.types import Pcm, SynthesisRequest
from media_server.errors import Busy

log = logging.getLogger(__name__)

StepResult = Pcm | None | BaseException
"""What a job reports after each step: audio, None when finished, or the error."""
Sink = Callable[[StepResult], None]
Steps = Generator[Pcm, None, None]


@dataclass
class _Job:
    request: SynthesisRequest
    steps: Steps
    sink: Sink
    sample_rate: int
    seq: int
    deadline: float
    first_audio_at: float | None = None
    audio_s: float = 0.0
    cancelled: bool = False
    running: bool = False

    def key(self) -> tuple[int, float, int]:
        return (int(self.request.priority), self.deadline, self.seq)


@dataclass
class SchedulerCounters:
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    refused: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0


class Scheduler:
    """Runs jobs' steps on `workers` threads in priority/deadline order."""

    def __init__(self, workers: int, max_queue: int) -> None:
        self._workers = workers
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._heap: list[tuple[tuple[int, float, int], _Job]] = []
        self._jobs: dict[str, _Job] = {}
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.counters = SchedulerCounters()

    def start(self) -> None:
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

    def submit(self, request: SynthesisRequest, steps: Steps, sample_rate: int, sink: Sink) -> None:
        with self._cond:
            if len(self._jobs) >= self.max_queue:
                self.counters.refused += 1
                raise Busy(
                    f"the synthesis queue is full ({self.max_queue} requests); retry shortly",
                    retry_after_s=1.0,
                )
            self._seq += 1
            job = _Job(request, steps, sink, sample_rate, self._seq, deadline=request.received_at)
            self._jobs[request.id] = job
            heapq.heappush(self._heap, (job.key(), job))
            self._cond.notify()

    def abort(self, request_id: str) -> None:
        with self._cond:
            job = self._jobs.get(request_id)
            if job is None or job.cancelled:
                return
            job.cancelled = True
            if not job.running:
                self._forget(job)

    @property
    def active(self) -> int:
        with self._cond:
            return sum(1 for job in self._jobs.values() if job.running)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._jobs)

    def _forget(self, job: _Job) -> None:
        self._jobs.pop(job.request.id, None)
        self.counters.cancelled += 1
        job.steps.close()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                while self._heap:
                    _, job = heapq.heappop(self._heap)
                    if not job.cancelled:
                        job.running = True
                        return job
                self._cond.wait()
            return None

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            started = time.monotonic()
            result: StepResult
            try:
                result = next(job.steps)
            except StopIteration:
                result = None
            except Exception as exc:
                log.exception("synthesis step failed for %s", job.request.id)
                result = exc
            self._after_step(job, result, time.monotonic() - started)

    def _after_step(self, job: _Job, result: StepResult, step_s: float) -> None:
        with self._cond:
            job.running = False
            self.counters.busy_s += step_s
            if job.cancelled:
                self._forget(job)
                return
            if result is None or isinstance(result, BaseException):
                self._jobs.pop(job.request.id, None)
                if result is None:
                    self.counters.completed += 1
                else:
                    self.counters.failed += 1
            else:
                now = time.monotonic()
                if job.first_audio_at is None:
                    job.first_audio_at = now
                job.audio_s += len(result) / job.sample_rate
                self.counters.audio_s += len(result) / job.sample_rate
                job.deadline = job.first_audio_at + job.audio_s
                heapq.heappush(self._heap, (job.key(), job))
                self._cond.notify()
        job.sink(result)
