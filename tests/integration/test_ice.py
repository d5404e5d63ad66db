"""What an offer may make the server do: which ICE candidates it checks and how fast, and which offers it refuses.

The candidates are UDP sockets of this test on loopback addresses: every
STUN binding request the server sends them is recorded (the test never
answers, so the server's checks stay in progress and retransmit).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from clients.rtc import SpeechClient, bare_offer
from tests.server import RunningServer, start_server

MAX_CANDIDATES = 8
CHECKS_PER_SECOND = 2.0
ALLOWED_HOST = "127.0.0.2"  # the one network `fenced` lets the server check, besides public addresses
STUN_BINDING_REQUEST = b"\x00\x01"
STUN_MAGIC_COOKIE = b"\x21\x12\xa4\x42"


@pytest.fixture(scope="module")
def paced() -> Iterator[RunningServer]:
    """On loopback, so private and loopback candidates are allowed (the development default)."""
    server = start_server(
        {"RTC_MAX_REMOTE_CANDIDATES": str(MAX_CANDIDATES), "RTC_ICE_CHECKS_PER_SECOND": str(CHECKS_PER_SECOND)}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fenced() -> Iterator[RunningServer]:
    """Private and loopback candidates refused, as off loopback, but for one allowed network."""
    server = start_server({"RTC_PRIVATE_CANDIDATES": "false", "RTC_CANDIDATE_NETWORKS": f"{ALLOWED_HOST}/32"})
    yield server
    server.stop()


class Listener(asyncio.DatagramProtocol):
    """A remote candidate: records the transaction id and arrival time of each STUN binding request,
    and sets `arrived`."""

    def __init__(self, arrived: asyncio.Event) -> None:
        self.requests: list[tuple[float, bytes]] = []
        self.port = 0
        self._arrived = arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if data[:2] == STUN_BINDING_REQUEST and data[4:8] == STUN_MAGIC_COOKIE:
            self.requests.append((time.monotonic(), data[8:20]))
            self._arrived.set()


async def listen(
    host: str, count: int, arrived: asyncio.Event
) -> tuple[list[Listener], list[asyncio.DatagramTransport]]:
    loop = asyncio.get_running_loop()
    made = [await loop.create_datagram_endpoint(lambda: Listener(arrived), local_addr=(host, 0)) for _ in range(count)]
    return [protocol for _, protocol in made], [transport for transport, _ in made]


def candidate_line(index: int, host: str, port: int, priority: int) -> str:
    return f"a=candidate:{index} 1 udp {priority} {host} {port} typ host"


def offer_with_candidates(sdp: str, candidates: list[str]) -> str:
    """`sdp` with its own candidates replaced by `candidates`, in its first media section (bundled: the one
    whose transport is used)."""
    lines = [line for line in sdp.splitlines() if not line.startswith("a=candidate:")]
    at = lines.index("a=end-of-candidates")
    return "\r\n".join(lines[:at] + candidates + lines[at:]) + "\r\n"


async def post_offer(url: str, sdp: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url + "/rtc/offer", json={"sdp": sdp, "type": "offer"}) as r:
        return r.status, await r.json()


async def hang_up(url: str, session_id: str) -> None:
    async with aiohttp.ClientSession() as http, http.delete(f"{url}/rtc/sessions/{session_id}") as resp:
        assert resp.status == 200


async def wait_until(predicate: Callable[[], bool], arrived: asyncio.Event, timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            arrived.clear()
            await arrived.wait()


@pytest.mark.asyncio
async def test_candidates_outside_the_allowed_networks_are_never_checked(fenced: RunningServer) -> None:
    arrived = asyncio.Event()
    (refused,), refused_transports = await listen("127.0.0.1", 1, arrived)
    (allowed,), allowed_transports = await listen(ALLOWED_HOST, 1, arrived)
    pc, sdp = await bare_offer()
    await pc.close()
    try:
        candidates = [  # the refused one first: checked before the allowed one if it were kept
            candidate_line(1, "127.0.0.1", refused.port, 2_000_000_000),
            candidate_line(2, ALLOWED_HOST, allowed.port, 1_000_000_000),
        ]
        status, answer = await post_offer(fenced.url, offer_with_candidates(sdp, candidates))
        assert status == 200, answer
        # The allowed candidate is checked, and retried half a second later: long after the refused
        # one would have had its first check.
        await wait_until(lambda: len(allowed.requests) >= 2, arrived)
        assert refused.requests == []
        await hang_up(fenced.url, answer["session_id"])
    finally:
        for transport in refused_transports + allowed_transports:
            transport.close()


@pytest.mark.asyncio
async def test_connectivity_checks_are_paced_per_peer(paced: RunningServer) -> None:
    arrived = asyncio.Event()
    targets, transports = await listen("127.0.0.1", MAX_CANDIDATES, arrived)
    pc, sdp = await bare_offer()
    await pc.close()
    try:
        candidates = [candidate_line(i, "127.0.0.1", t.port, 2_000_000_000 - i) for i, t in enumerate(targets)]
        status, answer = await post_offer(paced.url, offer_with_candidates(sdp, candidates))
        assert status == 200, answer

        def checks() -> list[float]:
            """When each check (a distinct transaction; retransmissions repeat theirs) first arrived."""
            first: dict[bytes, float] = {}
            for at, transaction in sorted(r for t in targets for r in t.requests):
                first.setdefault(transaction, at)
            return sorted(first.values())

        started = 6
        await wait_until(lambda: len(checks()) >= started, arrived)
        # A burst of CHECKS_PER_SECOND, then one every 1 / CHECKS_PER_SECOND s (unpaced: all within 0.2 s).
        spread = checks()[started - 1] - checks()[0]
        assert spread >= (started - CHECKS_PER_SECOND) / CHECKS_PER_SECOND - 0.5, checks()
        await hang_up(paced.url, answer["session_id"])
    finally:
        for transport in transports:
            transport.close()


@pytest.mark.asyncio
async def test_an_offer_with_too_many_candidates_is_refused(paced: RunningServer) -> None:
    pc, sdp = await bare_offer()
    await pc.close()
    candidates = [candidate_line(i, "198.51.100.7", 40000 + i, 1000) for i in range(MAX_CANDIDATES + 1)]
    status, error = await post_offer(paced.url, offer_with_candidates(sdp, candidates))
    assert (status, error["error"]["code"]) == (400, "invalid_offer")
    assert f"{MAX_CANDIDATES + 1} ICE candidates is over the limit of {MAX_CANDIDATES}" in error["error"]["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda sdp: "\r\n".join(x for x in sdp.split("\r\n") if not x.startswith("a=fingerprint:")), "fingerprint"),
        (lambda sdp: sdp.replace("a=recvonly", "a=sendonly"), "no audio section"),
        (lambda sdp: sdp.replace("a=recvonly", "a=inactive"), "no audio section"),
        (lambda sdp: re.sub(r"^m=audio \d+ ", "m=audio 0 ", sdp, count=1, flags=re.M), "no audio section"),
    ],
    ids=["no-fingerprint", "sendonly-audio", "inactive-audio", "rejected-audio"],
)
async def test_an_offer_the_server_cannot_use_is_refused(
    server_url: str, change: Callable[[str], str], named: str
) -> None:
    pc, sdp = await bare_offer()
    await pc.close()
    changed = change(sdp)
    assert changed != sdp
    status, error = await post_offer(server_url, changed)
    assert (status, error["error"]["code"]) == (400, "invalid_offer")
    assert named in error["error"]["message"]


@pytest.mark.asyncio
async def test_a_client_whose_candidates_are_all_refused_still_connects(fenced: RunningServer) -> None:
    client = SpeechClient(fenced.url)  # its host candidates are private addresses of this machine
    try:
        await client.connect()
        sent = client.send({"type": "speak", "text": "Found by its own checks.", "id": "p1"})
        await client.wait_event("done", "p1", after=sent)
        assert client.received.audible(since=sent)
    finally:
        await client.close()
