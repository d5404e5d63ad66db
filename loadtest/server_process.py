"""Servers under test as subprocesses on free ports: start, wait until ready, stop; and finding the
process behind a URL the harness did not start, so its CPU can still be measured."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import psutil

READY_TIMEOUT_S = 90.0


@dataclass
class ServiceProcess:
    """A server subprocess, the URL it answers on, and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        terminate(self.process)
        self.log.close()


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_http_ok(process: subprocess.Popen[bytes], url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Block until `url` answers 200; RuntimeError if `process` exits first, TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_service(
    name: str,
    command: Sequence[str],
    port: int,
    ready_path: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """Run `command` (which must listen on 127.0.0.1:`port`) until `ready_path` answers 200."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    process = subprocess.Popen(list(command), env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    service = ServiceProcess(name, process, f"http://127.0.0.1:{port}", log)
    try:
        wait_http_ok(process, service.url + ready_path)
    except (RuntimeError, TimeoutError) as exc:
        service.stop()
        raise RuntimeError(f"{name} did not become ready ({exc}); see {log_path}") from exc
    return service


def start_media_server(env: Mapping[str, str], log_path: Path) -> ServiceProcess:
    """`python -m media_server serve` on a free port with `env` on top of this process's environment."""
    port = free_port()
    return start_service(
        "media-server",
        [sys.executable, "-m", "media_server", "serve"],
        port,
        "/readyz",
        log_path,
        {"HOST": "127.0.0.1", "PORT": str(port), **env},
    )


def listener_pid(url: str) -> int | None:
    """The local process listening on `url`'s port, if this user may see it."""
    port = urlsplit(url).port
    if port is None:
        return None
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`--env KEY=VALUE` arguments as a settings dictionary."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env {pair!r}: expected KEY=VALUE")
        settings[key] = value
    return settings
