"""Fixtures for talking to the running server with real WebRTC peers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from clients.rtc import SpeechClient


@pytest_asyncio.fixture
async def peer(server_url: str) -> AsyncIterator[SpeechClient]:
    client = SpeechClient(server_url)
    await client.connect()
    yield client
    await client.close()
