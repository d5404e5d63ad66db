"""A request body trickled one byte at a time, while watching for the answer the server gives
before the body is complete: a client that holds a connection open as cheaply as it can."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from clients.websocket import host_port, open_stream, read_status

ANSWER_LIMIT = 64 * 1024  # bytes of an answer's headers a trickling client will read


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
    host, port = host_port(base_url)
    started = time.monotonic()
    reader, writer = await open_stream(base_url, limit=ANSWER_LIMIT)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    answer = asyncio.create_task(read_status(reader))
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
