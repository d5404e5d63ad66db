"""Shared fixtures: one real server per test session, started on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import RunningServer, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Dictionaries the tests (and the OpenAPI fuzzing) store stay out of the home directory.
    running = start_server({"DICTIONARY_DIR": str(tmp_path_factory.mktemp("dictionaries"))})
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server_url(server: RunningServer) -> str:
    return server.url
