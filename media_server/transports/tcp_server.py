"""A TCP listener whose connections are tasks it owns (the Wyoming server, the AudioSocket listener).

`tcp_server` listens while its context is open; each connection runs
`handle(reader, writer)` in its own task, and its socket is closed when that
returns. Leaving the context stops listening, cancels every connection still
running and waits for them (and their sockets) to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 2**16
"""asyncio's own line limit of a stream reader."""
ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(
    handle: ConnectionHandler, host: str, port: int, name: str, limit: int = DEFAULT_LIMIT
) -> AsyncIterator[None]:
    """Serve `handle` on `host`:`port` while the context is open (`limit`: the readers' line limit)."""
    connections: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await handle(reader, writer)
        finally:
            connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(accept, host, port, limit=limit)
    log.info("%s on %s:%d", name, host, port)
    try:
        yield
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()
