"""Shared fixtures: one real server per test session, started on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import RunningServer, start_server


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    running = start_server()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server_url(server: RunningServer) -> str:
    return server.url
