"""Fixtures for talking to the running servers: real WebRTC peers, and a server that takes calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from clients.rtc import SpeechClient
from tests.calls import CallsServer, start_calls_server


@pytest_asyncio.fixture
async def peer(server_url: str) -> AsyncIterator[SpeechClient]:
    client = SpeechClient(server_url)
    await client.connect()
    yield client
    await client.close()


@pytest.fixture(scope="session")
def calls_server() -> Iterator[CallsServer]:
    """A server of its own with an AudioSocket listener, for the telephony tests (their metrics are theirs)."""
    running = start_calls_server()
    yield running
    running.server.stop()
