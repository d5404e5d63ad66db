"""A real media server started as a subprocess on a free port, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    """A `media-server serve` process and the URL it answers on."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_ready(server: RunningServer, path: str = "/readyz") -> None:
    """Block until `path` answers 200 (raises if the process dies or it takes too long)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    server.stop()
    raise TimeoutError("server did not become ready")


def start_server(extra_env: Mapping[str, str] | None = None, wait: bool = True) -> RunningServer:
    """Start the server with `extra_env` on top of the test environment; by default wait until ready."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **(extra_env or {})}
    process = subprocess.Popen([sys.executable, "-m", "media_server", "serve"], env=env)
    server = RunningServer(process=process, url=f"http://127.0.0.1:{port}", env=dict(extra_env or {}))
    if wait:
        wait_ready(server)
    return server
