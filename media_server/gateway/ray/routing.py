"""`SlackRouter`: how each gateway's deployment handle picks the engine replica for a call.

This is Ray Serve's custom request router (`ray.serve.request_router`, an
alpha API in `ray[serve]==2.60.0`, the version the `ray` extra pins), set on
the engine deployment by `cluster.engine_app`; Serve builds one in every
process that holds a handle of it, so each gateway routes its own calls.

Each replica's `record_routing_stats` (a `policy.Report`) reaches the router
through Serve's controller every `board.REPORT_INTERVAL_S`. Between two
reports the router keeps count of its own calls open on each replica, by
priority (from `on_request_routed` to `on_request_completed`), and corrects
the replica's last report by how that count changed since (and never counts
fewer calls on a replica than it has open there: a report is some hundreds of
milliseconds old when it arrives): a burst of new calls does not all go to the
replica that looked freest at the last report, and a call that ended since
frees its room at once. `policy.rank` orders the replicas; Serve tries them in
that order and sends the call to the first that accepts it (one whose ongoing
calls are under its cap). A call for a cloned voice (a multiplexed model id)
first looks among the replicas that have the clone loaded (Serve's
`MultiplexMixin`).

Serve records this class in the deployment's config by reference (its import
path: cloudpickle pickles an importable class so), so every process that routes
the engine's calls imports this module: it needs the package installed, as
every gateway has.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ray.serve.request_router import MultiplexMixin, PendingRequest, ReplicaID, RequestRouter, RunningReplica

from media_server.engine.types import Priority
from media_server.gateway.ray.calls import Call
from media_server.gateway.ray.policy import ReplicaLoad, Report, rank

SYNTHESIZE = "synthesize"
"""The replica method an utterance's call runs; the others (voices, clones) are ranked as real-time and not counted."""


def call_priority(request: PendingRequest | None) -> Priority | None:
    """The priority of an utterance's call; None for any other call."""
    if request is None or request.metadata.call_method != SYNTHESIZE or not request.args:
        return None
    return Call.priority_on_wire(request.args[0])


class SlackRouter(MultiplexMixin, RequestRouter):
    """Real-time calls to the replica with the most slack; batch calls where real-time work has room."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
        self._open: dict[str, tuple[ReplicaID, Priority]] = {}
        """This router's calls open now (by Serve's internal request id): their replica and priority."""
        self._at_report: dict[ReplicaID, Counter[Priority]] = {}
        """This router's calls open on each replica when its last report came."""
        self._reported: dict[ReplicaID, float] = {}
        """The number of each replica's last report."""

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        """Serve's new view of the replicas; a fresh report is taken as counting the calls open now."""
        super().update_replicas(replicas)
        live = set()
        for replica in replicas:
            live.add(replica.replica_id)
            report = Report.from_stats(replica.routing_stats)
            if report is not None and self._reported.get(replica.replica_id) != report.report:
                self._reported[replica.replica_id] = report.report
                self._at_report[replica.replica_id] = self._open_on(replica.replica_id)
        for gone in set(self._reported) - live:
            self._forget(gone)

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._forget(replica_id)

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        """One rank per replica, best first."""
        candidates = candidate_replicas
        if pending_request is not None and pending_request.metadata.multiplexed_model_id:
            having = self.apply_multiplex_routing(pending_request=pending_request)
            candidates = [replica for replica in candidate_replicas if replica.replica_id in having]
        elif pending_request is not None:
            # When every replica refuses (all at their cap), Serve waits before it asks again, not in a busy loop.
            pending_request.routing_context.should_backoff = True
        by_name = {replica.replica_id.unique_id: replica for replica in candidates}
        loads = [self._load(replica) for replica in candidates]
        priority = call_priority(pending_request)
        order = rank(loads, Priority.REALTIME if priority is None else priority)
        return [[by_name[name]] for name in order]

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any) -> None:
        priority = call_priority(pending_request)
        if priority is not None:
            self._open[pending_request.metadata.internal_request_id] = (replica_id, priority)

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        self._open.pop(internal_request_id, None)

    def _open_on(self, replica_id: ReplicaID) -> Counter[Priority]:
        return Counter(priority for replica, priority in self._open.values() if replica == replica_id)

    def _load(self, replica: RunningReplica) -> ReplicaLoad:
        now = self._open_on(replica.replica_id)
        sent = now.copy()
        sent.subtract(self._at_report.get(replica.replica_id, Counter()))
        return ReplicaLoad(
            replica=replica.replica_id.unique_id,
            report=Report.from_stats(replica.routing_stats),
            sent_realtime=sent[Priority.REALTIME],
            sent_batch=sent[Priority.BATCH],
            open_realtime=now[Priority.REALTIME],
            open_batch=now[Priority.BATCH],
        )

    def _forget(self, replica_id: ReplicaID) -> None:
        self._at_report.pop(replica_id, None)
        self._reported.pop(replica_id, None)
        self._open = {request: call for request, call in self._open.items() if call[0] != replica_id}
