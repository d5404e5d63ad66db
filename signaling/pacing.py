"""Pacing a peer's ICE connectivity checks: at most `per_second` started a second, in bursts of as many.

aioice starts a check every 20 ms for as long as it has candidate pairs, so
without a bound every offer is a burst of STUN requests at whatever the
offer lists. aiortc offers no hook for this: `pace_checks` wraps the
`check_start_task` of each ICE connection of a peer (reached through the
gatherer's private `_connection`). A check refused for want of a token is
not lost: the pair stays waiting, and aioice offers it again on its next
20 ms tick, or when the remote side's next check arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aioice import Connection
from aioice.ice import CandidatePair
from aiortc import RTCIceTransport, RTCPeerConnection

StartCheck = Callable[[CandidatePair], None]


class CheckBudget:
    """A token bucket of connectivity checks."""

    def __init__(self, per_second: float, now: float) -> None:
        self._per_second = per_second
        self._tokens = self._burst = max(1.0, per_second)
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_second)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def pace_checks(pc: RTCPeerConnection, per_second: float) -> None:
    """Bound the checks each ICE connection of `pc` starts to `per_second` (0: no bound). Call it right
    after `setLocalDescription`, before the connection starts checking."""
    if per_second <= 0:
        return
    for transport in _ice_transports(pc):
        connection: Connection = transport.iceGatherer._connection
        paced = _paced(connection.check_start_task, CheckBudget(per_second, time.monotonic()))
        connection.check_start_task = paced  # type: ignore[method-assign,assignment]  # the hook aiortc lacks


def _paced(start: StartCheck, budget: CheckBudget) -> StartCheck:
    def paced(pair: CandidatePair) -> None:
        if budget.take(time.monotonic()):
            start(pair)

    return paced


def _ice_transports(pc: RTCPeerConnection) -> set[RTCIceTransport]:
    transports = {transceiver.receiver.transport.transport for transceiver in pc.getTransceivers()}
    if pc.sctp is not None:
        transports.add(pc.sctp.transport.transport)
    return transports
