"""Probing a running server from outside: its `/metrics`, bare WebRTC offers, and raw WebSocket clients."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aiohttp
from aiortc import RTCPeerConnection
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str, headers: Mapping[str, str] | None = None) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        text = await resp.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def internal_errors(samples: Samples) -> float:
    """HTTP requests that ended in a 500 (a WebSocket session counts as one request too)."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "media_server_http_requests_total" and dict(labels).get("status") == "500"
    )


async def wait_for_metrics(
    url: str,
    expected: Mapping[tuple[str, tuple[tuple[str, str], ...]], float],
    timeout_s: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> Samples:
    """Scrape until every sample in `expected` has its value; fails after `timeout_s` saying which differ."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await scrape(url, headers)
        wrong = {key: samples.get(key, 0.0) for key, value in expected.items() if samples.get(key, 0.0) != value}
        if not wrong:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s} s these metrics still differ from {dict(expected)}: {wrong}")
        await asyncio.sleep(0.1)


def sample(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


CLEAN = {
    sample("media_server_peers"): 0.0,
    sample("media_server_sessions", route="webrtc"): 0.0,
    sample("media_server_sessions", route="ws"): 0.0,
    sample("media_server_engine_queued_requests"): 0.0,
    sample("media_server_engine_parked_requests"): 0.0,
}
"""What a server with no clients shows: no peers, no sessions, no engine work."""


async def bare_offer() -> tuple[RTCPeerConnection, str]:
    """A real offer (audio to receive, a data channel) from a peer that does nothing more."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.createDataChannel("tts")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def text_frame(text: str) -> bytes:
    """One masked WebSocket text frame (RFC 6455), as a client must send it."""
    payload = text.encode()
    mask = b"\x1f\x2e\x3d\x4c"
    length = len(payload)
    header = bytes([0x81, 0x80 | length]) if length < 126 else bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


@asynccontextmanager
async def raw_websocket(url: str, receive_buffer: int | None = None) -> AsyncIterator[socket.socket]:
    """A WebSocket client on a bare socket: the test decides whether it ever reads, and how it goes away."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (parts.hostname, parts.port))
        request = (
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await loop.sock_recv(sock, 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        yield sock
    finally:
        sock.close()
