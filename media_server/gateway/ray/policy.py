"""The rules Ray mode spreads work and sizes the engine by, as plain functions of what replicas report.

Nothing here imports Ray: `routing.py` (Serve's request router) and `scaling.py`
(Serve's autoscaling policy) adapt Serve's hooks to these functions, and the
unit tests check the rules on plain data.

- `Report`: what a replica says about itself, every `REPORT_INTERVAL_S`
  (`EngineReplica.record_routing_stats` and `record_autoscaling_stats`).
- `rank`: which replica a call goes to. Real-time calls go to the replica with
  the most real-time slack (its first-audio budget minus its estimate of a new
  request's first audio), corrected by how many more (or fewer) of this
  gateway's calls are open on it than at its last report (and never counting
  fewer calls than this gateway has open there); replicas within
  `SLACK_TOLERANCE_S` of the best count as equal and the one with the fewest
  calls goes first. Batch calls go where
  real-time work has the most room too, so they never crowd it, spread by batch
  occupancy, and a replica whose batch queue is full goes last (it refuses with
  `busy` only when every replica would).
- `desired_replicas`: how many replicas the load needs: the current count
  scaled by the higher of two pressures (the mean first-audio estimate over its
  target, the mean batch occupancy over `TARGET_BATCH_OCCUPANCY`), and at least
  one more while any replica made audio after its listener ran dry.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from media_server.engine.types import Priority

SLACK_TOLERANCE_S = 0.010
"""Replicas whose slack is this close to the best one's count as equally free."""
TARGET_BATCH_OCCUPANCY = 0.5
"""The share of each replica's batch queue the scaling policy keeps in use on average: room is left for bursts."""


@dataclass(frozen=True)
class Report:
    """A replica's figures, as plain numbers (Serve carries them as a dict of floats)."""

    report: float
    """How many reports the replica has made: a new number is a fresh report."""
    slack_s: float
    """The first-audio budget minus the replica's estimate of a new real-time request's first audio."""
    first_audio_estimate_s: float
    added_call_s: float
    """How much one more real-time call would add to that estimate."""
    realtime_calls: float
    batch_calls: float
    batch_capacity: float
    """Batch requests the replica admits (`MAX_BATCH_QUEUE`); it refuses more with `busy`."""
    late_chunks: float
    """Real-time audio made after its listener had run dry, since the replica started (deadline misses)."""

    @property
    def batch_occupancy(self) -> float:
        return self.batch_calls / self.batch_capacity

    def to_stats(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_stats(cls, stats: Mapping[str, float]) -> Report | None:
        """The report in a replica's stats, or None before its first one (or from a replica of another version)."""
        try:
            return cls(**{name: float(stats[name]) for name in cls.__dataclass_fields__})
        except KeyError:
            return None


@dataclass(frozen=True)
class ReplicaLoad:
    """One replica as a router sees it: its last report, and this router's own calls open on it.

    `sent_*`: how many more of this router's calls are open on it now than when
    its last report reached the router (fewer, if negative: calls that ended
    since). `open_*`: this router's calls open on it now. A report reaches the
    router some time after the replica made it, so calls sent in between are in
    neither the report nor `sent_*`; the replica runs at least the calls this
    router has open there, whatever its report says.
    """

    replica: str
    report: Report | None
    sent_realtime: int = 0
    sent_batch: int = 0
    open_realtime: int = 0
    open_batch: int = 0

    def slack_s(self, unreported_s: float) -> float:
        """Its slack less what the calls added since its report will take (plus what ended calls gave back);
        `unreported_s` when it has not reported."""
        if self.report is None:
            return unreported_s
        added = self.realtime_calls - self.report.realtime_calls
        return self.report.slack_s - added * self.report.added_call_s

    @property
    def realtime_calls(self) -> float:
        reported = self.report.realtime_calls if self.report else 0.0
        return max(0.0, reported + self.sent_realtime, float(self.open_realtime))

    @property
    def batch_calls(self) -> float:
        reported = self.report.batch_calls if self.report else 0.0
        return max(0.0, reported + self.sent_batch, float(self.open_batch))

    @property
    def batch_full(self) -> bool:
        """Whether its batch queue is full, counting the batch calls sent since its report."""
        return self.report is not None and self.batch_calls >= self.report.batch_capacity


def rank(loads: Sequence[ReplicaLoad], priority: Priority, rng: random.Random | None = None) -> list[str]:
    """The replicas in the order a call of `priority` should try them (the first that accepts it serves it)."""
    if not loads:
        return []
    rng = rng or random.Random()
    reported = [load.slack_s(0.0) for load in loads if load.report is not None]
    unreported_s = max(reported, default=0.0)  # a replica that has not reported yet is a new, idle one
    slack = {load.replica: load.slack_s(unreported_s) for load in loads}
    best = max(slack.values())
    ties = {load.replica: rng.random() for load in loads}

    def near_best(load: ReplicaLoad) -> bool:
        return slack[load.replica] >= best - SLACK_TOLERANCE_S

    def key(load: ReplicaLoad) -> tuple[float, ...]:
        room = (0.0, 0.0) if near_best(load) else (1.0, -slack[load.replica])  # the near-best ones first, as equals
        if priority == Priority.REALTIME:
            return *room, load.realtime_calls, load.batch_calls, ties[load.replica]
        return float(load.batch_full), *room, load.batch_calls, load.realtime_calls, ties[load.replica]

    return [load.replica for load in sorted(loads, key=key)]


@dataclass(frozen=True)
class ScalingSignals:
    """One replica's figures over the scaling policy's look-back window."""

    first_audio_estimate_s: float
    """Its mean estimate of a new real-time request's first audio."""
    batch_occupancy: float
    """Its mean batch occupancy."""
    late_chunks: float
    """Deadline misses within the window."""


def desired_replicas(current: int, signals: Sequence[ScalingSignals], target_first_audio_s: float) -> float:
    """The replicas the load needs (Serve rounds it up, bounds it, and waits its delays before acting on it)."""
    if current == 0 or not signals:
        return float(current)
    count = len(signals)
    realtime = sum(s.first_audio_estimate_s for s in signals) / count / target_first_audio_s
    batch = sum(s.batch_occupancy for s in signals) / count / TARGET_BATCH_OCCUPANCY
    desired = current * max(realtime, batch)
    if any(s.late_chunks > 0 for s in signals):
        desired = max(desired, current + 1.0)
    return desired
