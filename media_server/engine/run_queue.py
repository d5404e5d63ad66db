"""The scheduler's policy as data: which admitted job steps next.

Per priority (real-time before batch), two heaps: fresh jobs (no audio yet, not
continuing anything) by arrival, and playing jobs by when they fall due (their
own work up to their next audio, and `REFILL_MARGIN_S`, before their listener
would run dry). `pop` takes, in order:
due playing jobs, then fresh ones, then playing ones not yet due. The
scheduler's module docstring says why.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from media_server.engine.pipeline import RequestPipeline
from media_server.engine.types import Priority, Speech

REFILL_MARGIN_S = 0.12
"""How long before its listener runs dry a playing job is due: a wait for a worker, its own steps, the trip out."""

StepResult = Speech | None | BaseException
"""What a job reports after each step: audio (and the words it carries), None when finished, or the error."""
Sink = Callable[[StepResult], None]


@dataclass(eq=False)
class Job:
    """One admitted request and where it stands."""

    pipeline: RequestPipeline
    sink: Sink
    order: int
    opened: bool = False
    sequence: Any = None
    replay: tuple[Speech, ...] | None = None
    first_audio_at: float | None = None
    work_s: float = 0.0
    """Step time spent on this job before its first audio."""
    audio_s: float = 0.0
    cancelled: bool = False
    outstanding: int = 0
    parked: bool = False
    lead_s: float = 0.0
    """Step time the job needs before its next audio (the backend's estimate)."""
    deadline: float = field(init=False)
    """When the listener will need this job's next audio."""

    def __post_init__(self) -> None:
        self.deadline = self.pipeline.request.due_at

    @property
    def id(self) -> str:
        return self.pipeline.request.id

    @property
    def priority(self) -> Priority:
        return self.pipeline.request.priority

    @property
    def fresh(self) -> bool:
        """A new utterance still waiting for its first audio."""
        return self.first_audio_at is None and self.pipeline.request.deadline is None

    @property
    def due_at(self) -> float:
        """When this job must step: at once for a fresh one, a margin before the listener runs dry otherwise."""
        return self.deadline if self.fresh else self.deadline - REFILL_MARGIN_S - self.lead_s

    def made(self, seconds: float, now: float) -> None:
        """Record `seconds` of new audio: the deadline moves to when the listener will have played it all."""
        if self.first_audio_at is None:
            self.first_audio_at = now
        self.audio_s += seconds
        self.deadline = max(self.pipeline.request.due_at, self.first_audio_at) + self.audio_s


Entry = tuple[float, int, Job]


@dataclass
class _Lane:
    fresh: list[Entry] = field(default_factory=list)
    playing: list[Entry] = field(default_factory=list)


class RunQueue:
    """Runnable jobs (not parked, not running), in the order they should step."""

    def __init__(self) -> None:
        self._lanes = {priority: _Lane() for priority in sorted(Priority)}

    def push(self, job: Job) -> None:
        lane = self._lanes[job.priority]
        heapq.heappush(lane.fresh if job.fresh else lane.playing, (job.due_at, job.order, job))

    def pop(self, now: float) -> Job | None:
        """The most urgent job, or None when there is none."""
        for lane in self._lanes.values():
            if lane.playing and lane.playing[0][0] <= now:
                return heapq.heappop(lane.playing)[2]
            if lane.fresh:
                return heapq.heappop(lane.fresh)[2]
            if lane.playing:
                return heapq.heappop(lane.playing)[2]
        return None

    def __iter__(self) -> Iterator[Job]:
        for lane in self._lanes.values():
            for _, _, job in itertools.chain(lane.fresh, lane.playing):
                yield job

    def __len__(self) -> int:
        return sum(len(lane.fresh) + len(lane.playing) for lane in self._lanes.values())
