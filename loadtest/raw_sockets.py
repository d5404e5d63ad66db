"""Clients at the byte level, for what a well-behaved library will not do: a WebSocket that never
reads, and a request body trickled one byte at a time.

`RawWebSocket` performs the opening handshake itself on a socket whose receive buffer is made tiny
before it connects, then stops reading for good: what the server sends piles up in the server's
own buffers, as with a client that has stopped reading. It only ever writes (masked frames, as RFC
6455 asks of a client), so it learns that the server dropped it when a write fails.

`trickle_body` sends a request's headers and then its body a byte every few seconds, while
watching for the answer the server gives before the body is complete.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

TINY_RECEIVE_BUFFER = 4096  # bytes; the kernel doubles it and keeps a floor of its own
READ_LIMIT = 1024  # bytes the stream reader buffers before it stops reading the socket
ANSWER_LIMIT = 64 * 1024  # bytes of an answer's headers a trickling client will read
HANDSHAKE_TIMEOUT_S = 10.0
TEXT = 0x1
FIN = 0x80
MASKED = 0x80


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"{base_url!r}: expected http://HOST:PORT")
    return parts.hostname, parts.port


async def _connect(
    base_url: str, receive_buffer: int | None = None, limit: int = READ_LIMIT
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = _host_port(base_url)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if receive_buffer is not None:  # before connecting, so the window offered is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        return await asyncio.open_connection(sock=sock, limit=limit)
    except BaseException:
        sock.close()
        raise


def text_frame(payload: str | bytes) -> bytes:
    """One masked, final WebSocket text frame carrying `payload`."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    size = len(data)
    if size < 126:
        header = struct.pack("!BB", FIN | TEXT, MASKED | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", FIN | TEXT, MASKED | 126, size)
    else:
        header = struct.pack("!BBQ", FIN | TEXT, MASKED | 127, size)
    mask = os.urandom(4)
    key = np.resize(np.frombuffer(mask, dtype=np.uint8), size)
    return header + mask + (np.frombuffer(data, dtype=np.uint8) ^ key).tobytes()


async def _status_and_headers(reader: asyncio.StreamReader) -> int:
    """The status of the HTTP answer `reader` holds, its headers read past (0 when none came)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else 0


class RawWebSocket:
    """A WebSocket client that never reads after the handshake (see the module's docstring)."""

    def __init__(self, writer: asyncio.StreamWriter, connected_at: float) -> None:
        self._writer = writer
        self.connected_at = connected_at
        self.sent = 0

    @classmethod
    async def connect(
        cls, base_url: str, path: str, receive_buffer: int = TINY_RECEIVE_BUFFER
    ) -> tuple[int, RawWebSocket | None]:
        """The handshake's status and, when it is 101, the connected client; OSError if it cannot connect."""
        host, port = _host_port(base_url)
        reader, writer = await _connect(base_url, receive_buffer)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            writer.write(request.encode("ascii"))
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                status = await _status_and_headers(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.transport.abort()
            return 0, None
        if status != 101:
            writer.transport.abort()
            return status, None
        transport = writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()  # from here on, nothing the server sends is read
        return status, cls(writer, time.monotonic())

    async def send(self, frame: bytes) -> None:
        """Write one frame (see `text_frame`); ConnectionError once the server has dropped the connection."""
        if self._writer.is_closing():
            raise ConnectionResetError("the connection is closed")
        self._writer.write(frame)
        await self._writer.drain()
        self.sent += 1

    def abort(self) -> None:
        self._writer.transport.abort()


@dataclass(frozen=True)
class TrickleEnd:
    """How a trickled body ended: `outcome` is the answer's status ("408"), "closed" (the server hung up
    without one), "reset" or "unfinished" (still sending when told to stop); after `held_s` seconds."""

    outcome: str
    held_s: float
    bytes_sent: int


def _ending(answer: asyncio.Task[int]) -> str:
    exc = answer.exception()
    if exc is None:
        return str(answer.result() or "unreadable answer")
    return "closed" if isinstance(exc, asyncio.IncompleteReadError) else "reset"


async def trickle_body(base_url: str, path: str, body: bytes, every_s: float, stop: asyncio.Event) -> TrickleEnd:
    """POST `body` to `path` a byte every `every_s` seconds until the server answers or hangs up, or `stop` is set."""
    host, port = _host_port(base_url)
    started = time.monotonic()
    reader, writer = await _connect(base_url, limit=ANSWER_LIMIT)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    answer = asyncio.create_task(_status_and_headers(reader))
    halted = asyncio.create_task(stop.wait())
    sent = 0
    try:
        writer.write(head.encode("ascii"))
        while not (answer.done() or halted.done()):
            if sent < len(body):
                writer.write(body[sent : sent + 1])
                sent += 1
            await asyncio.wait({answer, halted}, timeout=every_s, return_when=asyncio.FIRST_COMPLETED)
        outcome = _ending(answer) if answer.done() else "unfinished"
    finally:
        for task in (answer, halted):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        writer.transport.abort()
    return TrickleEnd(outcome, round(time.monotonic() - started, 1), sent)
