"""`RemoteCore`: the engine core (`media_server.engine.seam.EngineCore`) in a worker process, over a Unix socket.

The gateway's engine front checks every request itself (text, parameters,
language, voice, against the worker's voice list) and hands it here.
`submit` returns a `RemoteStream` at once; it connects on first use, sends the
request, and raises the worker's refusal (`busy`, ...) as the same
`MediaServerError` subclass. Closing the stream closes its connection, which
aborts the request in the worker. A worker that dies fails its in-flight
streams with `WorkerDied`; the supervisor restarts it for the next request.

`stats()` must answer synchronously (metrics are scraped in a collector), so a
task polls the worker every `STATS_INTERVAL_S` and `stats()` returns the
latest snapshot (marked not ready while no worker is). The poll is also the
liveness check: a worker stuck past `WORKER_STALL_TIMEOUT` is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from media_server.config import Settings
from media_server.engine.observer import EngineObserver, NoObserver
from media_server.engine.stream import Result, ResultStream
from media_server.engine.types import EngineStats, Pcm, RequestTimings, Speech, SynthesisRequest, Voice, WordTiming
from media_server.errors import MediaServerError, WorkerDied
from media_server.gateway.events import replay
from media_server.gateway.supervisor import WorkerSupervisor
from media_server.gateway.wire import (
    AUDIO,
    END,
    ERROR,
    WORDS,
    error_from_wire,
    pcm_from_wire,
    pcm_to_wire,
    read_frame,
    request_to_wire,
    stats_from_wire,
    update_timings,
    voice_from_wire,
    words_from_wire,
)

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 1.0
STATS_TIMEOUT_S = 5.0


@runtime_checkable
class RestartObserver(Protocol):
    """An observer that also counts worker restarts (`Metrics` is one)."""

    def record_worker_restart(self) -> None: ...


class RemoteStream(ResultStream):
    """One request's audio from the worker: connects on first use, closes its connection when done."""

    def __init__(self, supervisor: WorkerSupervisor, request: SynthesisRequest, voice: Voice, language: str) -> None:
        super().__init__(request, voice, language, RequestTimings())
        self._supervisor = supervisor
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._words: tuple[WordTiming, ...] = ()
        """The words of the audio frame that comes next."""

    async def _receive(self) -> Result:
        """The worker's next frame: audio, the end, or its error (a dead worker is `WorkerDied`)."""
        try:
            if self._reader is None:
                await self._connect()
            assert self._reader is not None
            kind, payload = await read_frame(self._reader)
            if kind == WORDS:
                self._words = words_from_wire(payload)
                kind, payload = await read_frame(self._reader)
        except MediaServerError as exc:
            return exc
        except (EOFError, OSError):
            return WorkerDied("the speech worker died mid-utterance")
        except BaseException:  # cancelled mid-frame: the connection cannot be read any further
            self._disconnect()
            raise
        if kind == AUDIO:
            words, self._words = self._words, ()
            return Speech(pcm_from_wire(payload), words)
        if kind == END:
            return None
        if kind == ERROR:
            return error_from_wire(json.loads(payload))
        return WorkerDied(f"the speech worker sent frame kind {kind} mid-stream")

    async def _connect(self) -> None:
        wire = request_to_wire(replace(self.request, voice=self.voice.id, language=self.language))
        self._reader, self._writer, header = await self._supervisor.open_request({"op": "synthesize", "request": wire})
        update_timings(self.timings, header["timings"])

    def _took(self) -> None:
        """The worker's socket is the back-pressure: what is not read here is not sent there."""

    def _stop(self, early: bool) -> None:
        self._disconnect()

    def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None
            self._supervisor.release()


class RemoteCore:
    """The engine core in the supervised worker process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._voices: tuple[Voice, ...] = ()
        self._supervisor = WorkerSupervisor(settings, on_ready=self._set_voices, on_restart=self._restarted)
        self._observer: EngineObserver = NoObserver()
        self._stats = EngineStats.idle(settings.tts_backend, settings.max_queue, settings.max_batch_queue)
        self._poller: asyncio.Task[None] | None = None
        self._responsive = True

    @property
    def backend_name(self) -> str:
        return self._settings.tts_backend

    @property
    def state(self) -> str:
        """`ready` (a worker answers), `loading` (one is starting) or `idle` (none runs)."""
        return self._supervisor.state

    async def start(self) -> float | None:
        """Start supervising; with `PRELOAD_MODEL`, start a worker now and return once one is ready (seconds taken)."""
        started = time.monotonic()
        self._supervisor.start()
        self._poller = asyncio.create_task(self._poll_stats(), name="worker-stats")
        if not self._settings.preload_model:
            return None
        while True:
            with contextlib.suppress(WorkerDied):  # the supervisor logged why, and tries again after a pause
                await self._supervisor.wait_ready()
                return time.monotonic() - started

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self._supervisor.stop()

    def observe(self, observer: EngineObserver) -> None:
        """Replay the worker's engine events into `observer`; count restarts if it has `record_worker_restart`."""
        self._observer = observer

    def health(self) -> bool:
        """A worker runs and answers: not loading, not stuck (a stats poll unanswered, a step running too long)."""
        return self._supervisor.state == "ready" and self._responsive

    def wake(self) -> None:
        """Mark the worker used (starting it if it is not running)."""
        self._supervisor.wake()

    def voices(self) -> Sequence[Voice]:
        """The worker's voices as it last reported them (still known while it is stopped when idle)."""
        return self._voices

    def submit(self, request: SynthesisRequest, voice: Voice, language: str) -> RemoteStream:
        """The request's stream; the worker admits it (or refuses it) when the stream is first used."""
        return RemoteStream(self._supervisor, request, voice, language)

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """Clone a voice in the worker (the reference audio follows the request as one audio frame)."""
        message = {"op": "create_voice", "sample_rate": sample_rate, "transcript": transcript, "name": name}
        reply = await self._supervisor.call(message, pcm_to_wire(reference))
        self._set_voices([voice_from_wire(fields) for fields in reply["voices"]])
        return voice_from_wire(reply["voice"])

    async def delete_voice(self, voice_id: str) -> None:
        reply = await self._supervisor.call({"op": "delete_voice", "voice_id": voice_id})
        self._set_voices([voice_from_wire(fields) for fields in reply["voices"]])

    def stats(self) -> EngineStats:
        if self.health():
            return self._stats
        return replace(self._stats, ready=False, active=0, queued=0, parked=0)

    def _set_voices(self, voices: Sequence[Voice]) -> None:
        self._voices = tuple(voices)

    def _restarted(self) -> None:
        if isinstance(self._observer, RestartObserver):
            self._observer.record_worker_restart()

    async def _poll_stats(self) -> None:
        """Every `STATS_INTERVAL_S`: the worker's snapshot and events; a worker stuck past the stall timeout is killed.

        Stuck means its event loop has not answered for `WORKER_STALL_TIMEOUT` seconds
        (stopped, swapping, deadlocked) or one synthesis step has run that long.
        """
        stall_s = self._settings.worker_stall_timeout
        answered_at = time.monotonic()
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            if self._supervisor.state != "ready":
                answered_at, self._responsive = time.monotonic(), True
                continue
            try:
                reply = await asyncio.wait_for(self._supervisor.query({"op": "stats"}), min(STATS_TIMEOUT_S, stall_s))
            except (MediaServerError, EOFError, OSError, TimeoutError) as exc:
                log.debug("stats poll failed: %r", exc)
                self._responsive = False
                if time.monotonic() - answered_at > stall_s:
                    self._supervisor.kill(f"it has not answered for {stall_s:g} s")
                continue
            answered_at = time.monotonic()
            self._stats = stats_from_wire(reply["stats"])
            replay(reply["events"], self._observer)
            self._responsive = self._stats.longest_step_s <= stall_s
            if not self._responsive:
                self._supervisor.kill(f"a synthesis step has run for {self._stats.longest_step_s:.0f} s")
