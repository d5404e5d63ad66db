"""A real media server started as a subprocess on a free port, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from loadtest.server_process import free_port, terminate, wait_http_ok


@dataclass
class RunningServer:
    """A `media-server serve` process and the URL it answers on."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        terminate(self.process)


def wait_ready(server: RunningServer, path: str = "/readyz") -> None:
    """Block until `path` answers 200 (raises if the process dies or it takes too long)."""
    try:
        wait_http_ok(server.process, server.url + path)
    except TimeoutError:
        server.stop()
        raise


def start_server(extra_env: Mapping[str, str] | None = None, wait: bool = True) -> RunningServer:
    """Start the server with `extra_env` on top of the test environment; by default wait until ready."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **(extra_env or {})}
    process = subprocess.Popen([sys.executable, "-m", "media_server", "serve"], env=env)
    server = RunningServer(process=process, url=f"http://127.0.0.1:{port}", env=dict(extra_env or {}))
    if wait:
        wait_ready(server)
    return server
