"""The worker process's lifecycle: started on demand, restarted when it dies, stopped when idle.

One task (`_supervise`) runs worker generations one after another. A
generation is one process: the gateway binds a fresh listening Unix socket in
its private directory, starts the worker with that socket (and the pickled
settings on stdin), asks it `hello` (answered once the model is loaded) and
reports its voices; then waits until the process exits (a death: counted as a
restart, and the next generation starts at once, or after a growing pause if it
never got ready) or until it has been unused for `IDLE_TIMEOUT` seconds (it is
stopped and the next one starts on the next request).

Stopping a worker closes its stdin (it exits by itself), then kills it if it
has not exited within `STOP_TIMEOUT_S`. A dying gateway closes the stdin too,
so a worker never outlives its gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from media_server.config import Settings
from media_server.engine.types import Voice
from media_server.errors import NotReady, WorkerDied
from media_server.gateway.wire import (
    AUDIO,
    Message,
    read_message,
    voice_from_wire,
    write_frame,
    write_message,
)

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# How long a request whose worker vanished waits for the supervisor to notice the death, then retries.
RECONNECT_WAIT_S = 1.0
SOCKET_BACKLOG = 256


class _Generation:
    """One worker process, as the requests waiting for it see it."""

    def __init__(self) -> None:
        self.settled = asyncio.Event()
        self.ended = asyncio.Event()
        self.failure: str | None = None

    def fail(self, reason: str) -> None:
        if not self.settled.is_set():
            self.failure = reason
            self.settled.set()
        self.ended.set()


class WorkerSupervisor:
    """Owns the worker process (one at a time) and the connections requests make to it."""

    def __init__(
        self,
        settings: Settings,
        on_ready: Callable[[Sequence[Voice]], None],
        on_restart: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._on_ready = on_ready
        self._on_restart = on_restart
        self._generation = _Generation()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._leases = 0
        self._used_at = time.monotonic()
        self._process: asyncio.subprocess.Process | None = None
        self.state = "idle"

    @property
    def _socket_path(self) -> str:
        assert self._directory is not None
        return str(Path(self._directory.name) / "worker.sock")

    def start(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="media-server-gateway-")
        self._task = asyncio.create_task(self._supervise(), name="worker-supervisor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._directory is not None:
            self._directory.cleanup()

    def kill(self, reason: str) -> None:
        """Kill the running worker (it is stuck): requests in flight fail with `worker_died`; it is restarted."""
        process = self._process
        if process is not None and process.returncode is None:
            log.error("killing speech worker %d: %s", process.pid, reason)
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def wake(self) -> None:
        """Mark the worker used now, and start it if it is not running."""
        self._used_at = time.monotonic()
        self._wanted.set()

    async def wait_ready(self) -> None:
        """Wait until a worker answers; raises WorkerDied if the one starting exits first."""
        self.wake()
        generation = self._generation
        await generation.settled.wait()
        if generation.failure is not None:
            raise WorkerDied(generation.failure)

    async def open_request(
        self, message: Message, audio: bytes | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Message]:
        """Send `message` (and `audio`) on a new connection and read the first reply; leased until `release`.

        Waits for a worker if none is ready. One that dies before it replies is
        replaced and the message sent once more, to the next one: nothing of the
        request reached the caller yet. A refusal raises its MediaServerError.
        """
        self._leases += 1
        try:
            for _ in range(2):
                await self.wait_ready()
                generation = self._generation
                try:
                    return await self._send(message, audio)
                except (EOFError, OSError):  # it died a moment ago: wait for the supervisor to see it
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(generation.ended.wait(), RECONNECT_WAIT_S)
            raise WorkerDied("the speech worker died before it answered")
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self._leases -= 1
        self._used_at = time.monotonic()

    async def call(self, message: Message, audio: bytes | None = None) -> Message:
        """A request answered by one reply (a use: it wakes the worker and waits for it)."""
        _, writer, reply = await self.open_request(message, audio)
        writer.close()
        self.release()
        return reply

    async def query(self, message: Message) -> Message:
        """One request/reply exchange with the running worker (not a use: it neither wakes nor keeps it)."""
        if self.state != "ready":
            raise NotReady("the speech worker is not running")
        return await self._exchange(message)

    async def _exchange(self, message: Message) -> Message:
        _, writer, reply = await self._send(message)
        writer.close()
        return reply

    async def _send(
        self, message: Message, audio: bytes | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Message]:
        reader, writer = await asyncio.open_unix_connection(self._socket_path)
        try:
            await write_message(writer, message)
            if audio is not None:
                await write_frame(writer, AUDIO, audio)
            return reader, writer, await read_message(reader)
        except BaseException:
            writer.close()
            raise

    async def _supervise(self) -> None:
        failures = 0
        while True:
            await self._wanted.wait()
            outcome = await self._run_generation()
            if outcome == "idle":
                continue
            self._on_restart()
            failures = 0 if outcome == "died" else failures + 1
            if failures:
                await asyncio.sleep(min(FIRST_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S))

    async def _run_generation(self) -> str:
        """Run one worker: `idle` when it was stopped unused, `died` after it served, `failed` if it never did."""
        generation = self._generation
        self.state = "loading"
        started = time.monotonic()
        process: asyncio.subprocess.Process | None = None
        try:
            process = await self._spawn()
            self._process = process
            reply = await self._exchange({"op": "hello"})
            self._on_ready([voice_from_wire(fields) for fields in reply["voices"]])
            log.info("speech worker %d ready in %.2f s", process.pid, time.monotonic() - started)
            self.state = "ready"
            self._used_at = time.monotonic()
            generation.settled.set()
            return await self._watch(process, generation)
        except (EOFError, OSError) as exc:  # it exited while loading; it logged why
            log.error("the speech worker exited before it was ready: %r", exc)
            return "failed"
        except Exception:  # whatever else went wrong with this worker, the supervisor lives on and tries again
            log.exception("the speech worker failed to start")
            return "failed"
        finally:
            self._retire(generation, "the speech worker exited before it was ready (see the server log)")
            self._process = None
            if process is not None:
                await _stop_process(process)

    def _retire(self, generation: _Generation, reason: str) -> None:
        """Requests from now on wait for the next worker; those waiting for `generation` fail if it never got ready."""
        if self._generation is generation:
            self._generation = _Generation()
            self.state = "idle"
        generation.fail(reason)

    async def _spawn(self) -> asyncio.subprocess.Process:
        path = self._socket_path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
            listening.bind(path)
            listening.listen(SOCKET_BACKLOG)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "media_server.gateway.worker",
                "--fd",
                str(listening.fileno()),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(listening.fileno(),),
                start_new_session=True,
            )
        # From here the worker holds the only reference: when it dies, connections to it fail at once.
        log.info("started speech worker %d", process.pid)
        assert process.stdin is not None
        try:
            process.stdin.write(pickle.dumps(self._settings))
            await process.stdin.drain()
        except BaseException:
            await _stop_process(process)
            raise
        return process

    async def _watch(self, process: asyncio.subprocess.Process, generation: _Generation) -> str:
        """Wait until `process` exits (`died`) or is unused for the idle timeout (`idle`)."""
        exited = asyncio.create_task(process.wait(), name=f"worker-{process.pid}-exit")
        idle_s = self._settings.idle_timeout
        try:
            while True:
                done, _ = await asyncio.wait((exited,), timeout=min(idle_s / 4, 5.0) if idle_s > 0 else None)
                if done:
                    log.warning("speech worker %d died (exit status %s)", process.pid, exited.result())
                    return "died"
                if self._leases == 0 and time.monotonic() - self._used_at > idle_s:
                    # At once, before any await: a request from now on wakes the next worker.
                    self._wanted.clear()
                    self._retire(generation, "the speech worker was stopped")
                    log.info("stopping speech worker %d after %.0f s idle", process.pid, idle_s)
                    return "idle"
        finally:
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exited


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    """Close the worker's stdin (it exits by itself); kill it if it has not within STOP_TIMEOUT_S, or if cancelled."""
    assert process.stdin is not None
    process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        log.warning("speech worker %d did not exit; killing it", process.pid)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.wait()
