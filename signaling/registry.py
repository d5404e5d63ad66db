"""The registry of live peer connections: creation from an offer, limits, cleanup.

Every peer is closed and forgotten on hang-up, on ICE failure, when it does not
connect within `connect_timeout_s`, or after `idle_timeout_s` without activity
(`Peer.touch`). The registry owns the tasks it starts and cancels them on stop.

A peer belongs to the owner that created it (an opaque value the caller
passes in: an API key, an address): only that owner may hang it up, and to
anyone else the session does not exist. Its id is the session's capability,
so logs name a peer by its `tag`, never by its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from signaling.errors import BadOffer, TooManyPeers, TooManyPeersFromClient, UnknownSession
from signaling.offer import CandidatePolicy, screen_offer
from signaling.pacing import pace_checks

log = logging.getLogger(__name__)


class Media(Protocol):
    """What the attach callback returns: the media side of a peer, closed with it."""

    async def wait_idle(self) -> None:
        """Return once the media has nothing in progress (used to drain before shutdown)."""

    async def close(self) -> None: ...


@dataclass
class Peer:
    id: str
    pc: RTCPeerConnection
    created_at: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    media: Media | None = None
    client: str | None = None
    owner: str | None = None
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    """What logs call the peer: unrelated to its id, which is a secret of its owner."""

    def touch(self) -> None:
        self.last_activity = time.monotonic()


Attach = Callable[[Peer, Mapping[str, Any]], Awaitable[Media]]


@dataclass(frozen=True)
class RegistryLimits:
    max_peers: int = 64
    connect_timeout_s: float = 30.0
    idle_timeout_s: float = 600.0
    max_sdp_bytes: int = 64 * 1024
    max_peers_per_ip: int = 0  # 0: only `max_peers` applies
    candidates: CandidatePolicy = field(default_factory=CandidatePolicy)
    ice_checks_per_second: float = 20.0  # 0: unpaced


class PeerRegistry:
    def __init__(self, attach: Attach, ice_servers: Sequence[Mapping[str, Any]], limits: RegistryLimits) -> None:
        self._attach = attach
        self._ice_servers = [dict(server) for server in ice_servers]
        self._limits = limits
        self._peers: dict[str, Peer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    @property
    def ice_servers(self) -> list[dict[str, Any]]:
        return self._ice_servers

    def __len__(self) -> int:
        return len(self._peers)

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="peer-reaper")

    async def stop(self, grace_s: float = 0.0) -> None:
        """Close every peer, after letting their media finish what is in progress for up to `grace_s`."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        draining = [peer.media.wait_idle() for peer in self._peers.values() if peer.media is not None]
        if draining and grace_s > 0:
            log.info("letting %d peers finish speaking (up to %.0f s)", len(draining), grace_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*draining), grace_s)
        await asyncio.gather(*(self.close(peer_id) for peer_id in list(self._peers)))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def answer(
        self, offer: Mapping[str, Any], client: str | None = None, owner: str | None = None
    ) -> dict[str, str]:
        """Create a peer for `offer` (`{sdp, type: "offer", ...options}`) from the address `client`,
        belonging to `owner`, and return the answer."""
        sdp = offer.get("sdp")
        if not isinstance(sdp, str) or not sdp.strip():
            raise BadOffer("sdp: required, a non-empty string")
        size = len(sdp.encode("utf-8", "surrogatepass"))
        if size > self._limits.max_sdp_bytes:
            raise BadOffer(f"sdp: {size} bytes is over the limit of {self._limits.max_sdp_bytes}")
        if offer.get("type") != "offer":
            raise BadOffer(f"type: must be 'offer', got {offer.get('type')!r}")
        sdp = screen_offer(sdp, self._limits.candidates)
        if len(self._peers) >= self._limits.max_peers:
            raise TooManyPeers(f"the server holds its maximum of {self._limits.max_peers} live peers")
        per_ip = self._limits.max_peers_per_ip
        if per_ip and client is not None and sum(p.client == client for p in self._peers.values()) >= per_ip:
            raise TooManyPeersFromClient(f"{client} already holds its maximum of {per_ip} live peers")
        ice = [RTCIceServer(**server) for server in self._ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
        peer = Peer(id=uuid.uuid4().hex, pc=pc, client=client, owner=owner)
        self._peers[peer.id] = peer
        try:
            await self._apply_offer(peer, sdp)
            options = {k: v for k, v in offer.items() if k not in ("sdp", "type")}
            peer.media = await self._attach(peer, options)
            await self._make_answer(peer)
            pace_checks(peer.pc, self._limits.ice_checks_per_second)
        except BaseException:
            await self.close(peer.id)
            raise
        self._watch(peer)
        log.info("peer %s created (%d live)", peer.tag, len(self._peers))
        local = peer.pc.localDescription
        return {"sdp": local.sdp, "type": local.type, "session_id": peer.id}

    async def hang_up(self, peer_id: str, owner: str | None) -> None:
        """Close the peer `peer_id` for `owner`; a peer of another owner is as unknown as one that never was."""
        peer = self._peers.get(peer_id)
        if peer is None or peer.owner != owner:
            raise UnknownSession("session_id: no live session of yours has this id")
        await self.close(peer_id)

    async def close(self, peer_id: str) -> None:
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return
        if peer.media is not None:
            await peer.media.close()
        try:
            await peer.pc.close()
        except Exception:
            # aiortc cannot always close a connection it half negotiated from a bad offer; it is forgotten anyway.
            log.warning("peer %s did not close cleanly", peer.tag, exc_info=True)
        log.info("peer %s closed (%d live)", peer.tag, len(self._peers))

    @staticmethod
    async def _make_answer(peer: Peer) -> None:
        try:
            await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        except Exception as exc:
            # aiortc accepts some inconsistent offers (a BUNDLE naming a missing section) and fails only here.
            raise BadOffer(f"sdp: no answer can be made to the offer: {exc or type(exc).__name__}") from exc

    @staticmethod
    async def _apply_offer(peer: Peer, sdp: str) -> None:
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise BadOffer(f"sdp: the offer could not be applied: {exc or type(exc).__name__}") from exc

    def _watch(self, peer: Peer) -> None:
        @peer.pc.on("connectionstatechange")
        def on_state() -> None:
            if peer.pc.connectionState in ("failed", "closed"):
                self._spawn(self.close(peer.id))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reap_forever(self) -> None:
        period = max(0.1, min(self._limits.connect_timeout_s, self._limits.idle_timeout_s or 60.0) / 4)
        while True:
            await asyncio.sleep(period)
            await self._reap(time.monotonic())

    async def _reap(self, now: float) -> None:
        for peer in list(self._peers.values()):
            connected = peer.pc.connectionState == "connected"
            if not connected and now - peer.created_at > self._limits.connect_timeout_s:
                log.info("peer %s did not connect in %.0f s", peer.tag, self._limits.connect_timeout_s)
                await self.close(peer.id)
            elif connected and self._limits.idle_timeout_s and now - peer.last_activity > self._limits.idle_timeout_s:
                log.info("peer %s idle for %.0f s", peer.tag, self._limits.idle_timeout_s)
                await self.close(peer.id)
