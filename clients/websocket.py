"""A WebSocket client at the byte level, for what a well-behaved library will not do: stop reading.

`RawWebSocket` performs the opening handshake itself on a socket whose receive buffer can be made
tiny before it connects, then reads nothing unless asked (`receive`): what the server sends piles up
in the server's own buffers, as with a client that has stopped reading. It writes masked frames, as
RFC 6455 asks of a client (`text_frame`), so it learns that the server dropped it when a write fails.
The tests hold one for a block (`raw_websocket`); the adversarial load reconnects them in a loop.

`open_stream` and `read_status` are the socket and HTTP pieces underneath, for other byte-level clients.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import numpy as np

TINY_RECEIVE_BUFFER = 4096  # bytes; the kernel doubles it and keeps a floor of its own
READ_LIMIT = 1024  # bytes the stream reader buffers before it stops reading the socket
HANDSHAKE_TIMEOUT_S = 10.0
TEXT = 0x1
FIN = 0x80
MASKED = 0x80


def host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"{base_url!r}: expected http://HOST:PORT")
    return parts.hostname, parts.port


async def open_stream(
    base_url: str, receive_buffer: int | None = None, limit: int = READ_LIMIT
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to `base_url`'s host and port, its receive buffer set to `receive_buffer` bytes first."""
    host, port = host_port(base_url)
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


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status of the HTTP answer `reader` holds, its headers read past (0 when none came)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else 0


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


class RawWebSocket:
    """A WebSocket client that reads nothing after the handshake unless asked (see the module's docstring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connected_at: float) -> None:
        self._reader = reader
        self._writer = writer
        self.connected_at = connected_at
        self.sent = 0

    @classmethod
    async def connect(
        cls, base_url: str, path: str, receive_buffer: int | None = TINY_RECEIVE_BUFFER
    ) -> tuple[int, RawWebSocket | None]:
        """The handshake's status and, when it is 101, the connected client; OSError if it cannot connect."""
        host, port = host_port(base_url)
        reader, writer = await open_stream(base_url, receive_buffer)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            writer.write(request.encode("ascii"))
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                status = await read_status(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.transport.abort()
            return 0, None
        if status != 101:
            writer.transport.abort()
            return status, None
        client = cls(reader, writer, time.monotonic())
        client._transport.pause_reading()  # from here on, nothing the server sends is read unless asked
        return status, client

    @property
    def _transport(self) -> asyncio.ReadTransport:
        transport = self._writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        return transport

    async def send(self, data: bytes) -> None:
        """Write frames (see `text_frame`); ConnectionError once the server has dropped the connection."""
        if self._writer.is_closing():
            raise ConnectionResetError("the connection is closed")
        self._writer.write(data)
        await self._writer.drain()
        self.sent += 1

    async def receive(self, max_bytes: int) -> bytes:
        """Read once: up to `max_bytes` of what the server sent (b"" once it has hung up); then stop reading again."""
        self._transport.resume_reading()
        try:
            return await self._reader.read(max_bytes)
        finally:
            self._transport.pause_reading()

    def abort(self) -> None:
        self._writer.transport.abort()


@asynccontextmanager
async def raw_websocket(url: str, receive_buffer: int | None = None) -> AsyncIterator[RawWebSocket]:
    """A `RawWebSocket` to `url` (ws route and query) for the block, aborted after it; ConnectionError unless 101."""
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    status, client = await RawWebSocket.connect(f"{parts.scheme}://{parts.netloc}", target, receive_buffer)
    if client is None:
        raise ConnectionError(f"the WebSocket handshake to {url} answered {status}, not 101")
    try:
        yield client
    finally:
        client.abort()
