"""What the tests expect of a running server's `/metrics`: the sight of a server with no clients, and
waiting until the samples a test names have their values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from clients.metrics import Key, Samples, sample, scrape


async def wait_for_metrics(
    url: str,
    expected: Mapping[Key, float],
    timeout_s: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> Samples:
    """Scrape until every sample in `expected` has its value; fails after `timeout_s` saying which differ."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = (await scrape(url, headers)).samples
        wrong = {key: samples.get(key, 0.0) for key, value in expected.items() if samples.get(key, 0.0) != value}
        if not wrong:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s} s these metrics still differ from {dict(expected)}: {wrong}")
        await asyncio.sleep(0.1)


CLEAN = {
    sample("media_server_peers"): 0.0,
    sample("media_server_sessions", route="webrtc"): 0.0,
    sample("media_server_sessions", route="ws"): 0.0,
    sample("media_server_engine_queued_requests"): 0.0,
    sample("media_server_engine_parked_requests"): 0.0,
}
"""What a server with no clients shows: no peers, no sessions, no engine work."""
