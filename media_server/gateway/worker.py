"""The worker process: one `LocalCore` (the model) behind the gateway's Unix socket.

The gateway's supervisor starts it as `python -m media_server.gateway.worker --fd N`:
- fd N is a listening Unix socket the gateway made (see `wire` for why); the
  model loads before the first connection is accepted, so the gateway's
  connections simply wait in the backlog meanwhile;
- stdin carries the gateway's `Settings` (pickled: the gateway is the only
  writer and runs this same code; unlike argv or the environment, a pipe does
  not show API keys to other processes), then stays open: end of file means the
  gateway stopped this worker, or died, and the worker exits either way.

Each connection carries one request: `synthesize` (a request the gateway's
engine front has checked, with its voice and language resolved; a stream,
until it ends or the gateway hangs up), `stats` (the engine's snapshot and the observer
events since the last poll), `hello` (the voices), `create_voice` (followed by
the reference audio) or `delete_voice` (both answered with the new voice
list). A refusal is answered with an error frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import pickle
import socket
import sys
from dataclasses import asdict, replace

from media_server.config import Settings
from media_server.engine.core import LocalCore, LocalStream
from media_server.engine.types import Speech, SynthesisRequest
from media_server.errors import ConfigError, MediaServerError, UnknownVoice
from media_server.gateway.events import EventBuffer
from media_server.gateway.wire import (
    AUDIO,
    END,
    Message,
    pcm_from_wire,
    read_frame,
    read_message,
    request_from_wire,
    write_error,
    write_frame,
    write_message,
    write_speech,
)
from media_server.observability.logging import configure_logging

# Named, not __name__: run with `-m`, this module is `__main__`.
log = logging.getLogger("media_server.gateway.worker")


class Worker:
    """Answers the gateway's connections from one engine."""

    def __init__(self, engine: LocalCore, events: EventBuffer) -> None:
        self._engine = engine
        self._events = events
        self._connections: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            message = await read_message(reader)
            try:
                await self._answer(message, reader, writer)
            except MediaServerError as exc:
                await write_error(writer, exc)
        except (EOFError, ConnectionError) as exc:
            log.debug("gateway connection ended: %r", exc)
        except Exception:
            log.exception("worker connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, message: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        op = message.get("op")
        if op == "synthesize":
            await self._synthesize(request_from_wire(message["request"]), reader, writer)
        elif op == "stats":
            await write_message(writer, {"stats": asdict(self._engine.stats()), "events": self._events.drain()})
        elif op == "hello":
            await write_message(writer, {"voices": self._voices()})
        elif op == "create_voice":
            kind, reference = await read_frame(reader)
            if kind != AUDIO:
                raise ConnectionError(f"create_voice: expected the reference audio, got frame kind {kind}")
            voice = await self._engine.create_voice(
                pcm_from_wire(reference), int(message["sample_rate"]), message["transcript"], str(message["name"])
            )
            await write_message(writer, {"voice": asdict(voice), "voices": self._voices()})
        elif op == "delete_voice":
            await self._engine.delete_voice(str(message["voice_id"]))
            await write_message(writer, {"voices": self._voices()})
        else:
            raise ConnectionError(f"unknown op {op!r}")

    def _voices(self) -> list[Message]:
        return [asdict(voice) for voice in self._engine.voices()]

    async def _synthesize(
        self, request: SynthesisRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        voice = next((voice for voice in self._engine.voices() if voice.id == request.voice), None)
        if voice is None:
            raise UnknownVoice(f"voice: {request.voice!r} is not a voice of this worker")
        stream = self._engine.submit(request, voice, request.language)
        # Leaving this block closes the engine stream: its slot frees at the engine's next step.
        async with stream:
            pump = asyncio.create_task(_pump(stream, writer), name=f"pump-{request.id}")
            # The gateway never writes after its request: the read ends when it hangs up (abort).
            hangup = asyncio.create_task(reader.read(1), name=f"hangup-{request.id}")
            try:
                await asyncio.wait((pump, hangup), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, hangup):
                    task.cancel()
                await asyncio.gather(pump, hangup, return_exceptions=True)
            if not pump.cancelled():
                pump.result()

    async def close_connections(self) -> None:
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


async def _pump(stream: LocalStream, writer: asyncio.StreamWriter) -> None:
    """The stream's header (after its first step), audio frames and end; or its error."""
    try:
        await stream.wait_ready()
        await write_message(writer, {"timings": asdict(stream.timings)})
        async for chunk in stream:
            await write_speech(writer, Speech(chunk.pcm, chunk.words))
    except MediaServerError as exc:
        await write_error(writer, exc)
        return
    await write_frame(writer, END)


async def _until_stdin_closes() -> None:
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        await reader.read()
    finally:
        transport.close()


async def serve(settings: Settings, listening: socket.socket) -> None:
    """Load the model, then answer connections on `listening` until stdin closes."""
    engine = LocalCore(replace(settings, preload_model=True, idle_timeout=0.0))
    events = EventBuffer()
    engine.observe(events)
    worker = Worker(engine, events)
    try:
        await engine.start()
        async with await asyncio.start_unix_server(worker.handle, sock=listening) as server:
            try:
                await _until_stdin_closes()
            finally:
                server.close()
                await worker.close_connections()
    finally:
        await engine.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m media_server.gateway.worker", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="listening Unix socket inherited from the gateway")
    args = parser.parse_args(argv)
    settings = pickle.load(sys.stdin.buffer)
    if not isinstance(settings, Settings):
        raise ConfigError("the worker's stdin must carry the gateway's Settings")
    configure_logging(settings.log_level, json=settings.log_json)
    with socket.socket(fileno=args.fd) as listening:
        try:
            asyncio.run(serve(settings, listening))
        except MediaServerError as exc:
            log.error("worker failed: %s: %s", exc.code, exc.message)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
