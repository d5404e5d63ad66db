"""TURN with a real coturn (`use-auth-secret`) on loopback: the credentials `/rtc/config` hands out
are accepted, forged or expired ones are not, and a relay-only aiortc peer (aiortc's
`iceTransportPolicy=RELAY`: it offers relayed candidates only) hears the server through it.

Skipped only where coturn's `turnserver` is not installed (Debian package `coturn`).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from clients.rtc import SpeechClient
from loadtest.server_process import free_port
from signaling.turn import turn_credential
from tests.server import RunningServer, start_server

TURNSERVER = shutil.which("turnserver")
SECRET = "turn-test-secret"
READY_TIMEOUT_S = 10.0


@dataclass
class Coturn:
    port: int

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


def _wait_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until coturn answers a STUN binding request on `port`."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.connect(("127.0.0.1", port))
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"turnserver exited with {process.returncode}")
            request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
            try:
                sock.send(bytes(request))
                if stun.parse_message(sock.recv(2048)).transaction_id == request.transaction_id:
                    return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise TimeoutError("turnserver did not answer")


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    if TURNSERVER is None:
        pytest.skip("coturn is not installed (Debian package coturn: no turnserver on PATH)")
    workdir: Path = tmp_path_factory.mktemp("coturn")
    port = free_port()
    command = [
        TURNSERVER, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=media-server.test",
        "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout", "--simple-log",
        f"--userdb={workdir / 'turndb'}", f"--pidfile={workdir / 'turnserver.pid'}",
    ]  # fmt: skip
    with (workdir / "turnserver.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_answering(port, process)
            yield Coturn(port)
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def turn_server(coturn: Coturn) -> Iterator[RunningServer]:
    server = start_server({"TURN_SECRET": SECRET, "TURN_URLS": coturn.url, "TURN_TTL": "600"})
    yield server
    server.stop()


async def turn_entry(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + "/rtc/config") as response:
        config = await response.json()
    assert config["ttl"] == 600
    [entry] = config["iceServers"]
    assert isinstance(entry, dict)
    return entry


async def allocate(coturn: Coturn, username: str, credential: str) -> tuple[str, int]:
    """A TURN allocation on coturn; returns the relayed address."""
    transport, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username=username, password=credential
    )
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_config_credentials_allocate_on_coturn(coturn: Coturn, turn_server: RunningServer) -> None:
    entry = await turn_entry(turn_server.url)
    assert entry["urls"] == [coturn.url]
    host, port = await allocate(coturn, entry["username"], entry["credential"])
    assert host == "127.0.0.1" and port > 0


@pytest.mark.asyncio
async def test_coturn_refuses_forged_and_expired_credentials(coturn: Coturn) -> None:
    forged = turn_credential("not-the-secret", "mallory", ttl_s=600, now=time.time())
    expired = turn_credential(SECRET, "late", ttl_s=-60, now=time.time())
    for username, credential in (forged, expired):
        with pytest.raises(stun.TransactionFailed):
            await allocate(coturn, username, credential)


@pytest.mark.asyncio
async def test_a_relay_only_peer_hears_speech_through_turn(turn_server: RunningServer) -> None:
    entry = await turn_entry(turn_server.url)
    relay_only = RTCConfiguration(
        iceServers=[RTCIceServer(urls=entry["urls"], username=entry["username"], credential=entry["credential"])],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )
    client = SpeechClient(turn_server.url, configuration=relay_only)
    try:
        await client.connect()
        sent = client.send({"type": "speak", "text": "Relayed through the TURN server.", "id": "r1"})
        _, done = await client.wait_event("done", "r1")
        assert done["audio_ms"] > 1000
        assert client.received.audible(since=sent)
    finally:
        await client.close()
