"""Probing a running server from outside: its `/metrics`, and bare WebRTC offers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

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
