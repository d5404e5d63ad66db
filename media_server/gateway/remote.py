"""`RemoteEngine`: the engine seam (`media_server.engine.seam.Engine`) over the worker's Unix socket.

`stream()` stays synchronous, as `EngineClient.stream()` is: text, speed,
language (fastText, in the gateway) and voice are checked here against the
worker's voice list, and a `RemoteStream` is returned at once. Remote
admission happens on its first `wait_ready()` / `__anext__`: it connects,
sends the request, and raises the worker's refusal (`busy`, ...) as the same
`MediaServerError` subclass. Closing the stream closes its connection, which
aborts the request in the worker. A worker that dies fails its in-flight
streams with `WorkerDied`; the supervisor restarts it for the next request.

`stats()` must answer synchronously (metrics are scraped in a collector), so a
task polls the worker every `STATS_INTERVAL_S` and `stats()` returns the
latest snapshot (marked not ready while no worker is).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import Protocol, runtime_checkable

from media_server.config import Settings
from media_server.engine.catalog import VoiceCatalog
from media_server.engine.observer import EngineObserver, NoObserver
from media_server.engine.types import AudioChunk, EngineStats, Pcm, RequestTimings, SynthesisRequest, Voice
from media_server.errors import MediaServerError, NotReady, WorkerDied
from media_server.gateway.events import replay
from media_server.gateway.supervisor import WorkerSupervisor
from media_server.gateway.wire import (
    AUDIO,
    END,
    ERROR,
    error_from_wire,
    pcm_from_wire,
    pcm_to_wire,
    read_frame,
    request_to_wire,
    stats_from_wire,
    update_timings,
    voice_from_wire,
)
from media_server.text.langid import detect_language

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 1.0
STATS_TIMEOUT_S = 5.0


@runtime_checkable
class RestartObserver(Protocol):
    """An observer that also counts worker restarts (`Metrics` is one)."""

    def record_worker_restart(self) -> None: ...


class RemoteStream:
    """One request's audio from the worker: connects on first use, closes its connection when done."""

    def __init__(self, supervisor: WorkerSupervisor, request: SynthesisRequest, voice: Voice, language: str) -> None:
        self.request = request
        self.voice = voice
        self.language = language
        self.sample_rate = voice.sample_rate
        self.timings = RequestTimings()
        self._supervisor = supervisor
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._finished = False
        self._error: MediaServerError | None = None
        self._index = 0

    async def wait_ready(self) -> None:
        """Admit the request in the worker and wait for its first step; raises the worker's refusal."""
        if self._error is not None:
            raise self._error
        if self._finished or self._reader is not None:
            return
        wire = request_to_wire(replace(self.request, voice=self.voice.id, language=self.language))
        try:
            self._reader, self._writer, header = await self._supervisor.open_request(
                {"op": "synthesize", "request": wire}
            )
        except MediaServerError as exc:
            raise self._fail(exc) from None
        update_timings(self.timings, header["timings"])

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> AudioChunk:
        await self.wait_ready()
        if self._reader is None:
            raise StopAsyncIteration
        try:
            kind, payload = await read_frame(self._reader)
        except (EOFError, OSError) as exc:
            raise self._fail(WorkerDied("the speech worker died mid-utterance")) from exc
        except BaseException:  # cancelled mid-frame: the connection cannot be read any further
            self._disconnect()
            raise
        if kind == ERROR:
            raise self._fail(error_from_wire(json.loads(payload)))
        if kind != AUDIO:
            self._disconnect()
            if kind == END:
                raise StopAsyncIteration
            raise self._fail(WorkerDied(f"the speech worker sent frame kind {kind} mid-stream"))
        chunk = AudioChunk(
            pcm=pcm_from_wire(payload), sample_rate=self.sample_rate, request_id=self.request.id, index=self._index
        )
        self._index += 1
        return chunk

    async def __aenter__(self) -> RemoteStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the request: closing the connection aborts it in the worker at its next step."""
        self._disconnect()

    def _fail(self, exc: MediaServerError) -> MediaServerError:
        self._error = exc
        self._disconnect()
        return exc

    def _disconnect(self) -> None:
        self._finished = True
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None
            self._supervisor.release()


class RemoteEngine:
    """The `Engine` seam in the gateway: checks requests here, synthesizes in the supervised worker."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._catalog = VoiceCatalog(settings.max_text_chars)
        self._supervisor = WorkerSupervisor(settings, on_ready=self._catalog.update, on_restart=self._restarted)
        self._observer: EngineObserver = NoObserver()
        self._stats = EngineStats(
            backend=settings.tts_backend,
            ready=False,
            active=0,
            queued=0,
            parked=0,
            max_queue=settings.max_queue,
            completed=0,
            cancelled=0,
            failed=0,
            refused=0,
            steps=0,
            last_batch=0,
            audio_s=0.0,
            busy_s=0.0,
            cache_bytes=0,
            max_batch_queue=settings.max_batch_queue,
        )
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
        # Load fastText off the event loop now, not on the first "auto" request.
        await asyncio.to_thread(detect_language, "warm up")
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

    def voices(self) -> Sequence[Voice]:
        return self._catalog.voices()

    def resolve_voice(self, voice_id: str | None, language: str | None = None) -> Voice:
        self._require_voices()
        return self._catalog.resolve_voice(voice_id, language)

    def validate_text(self, text: str) -> None:
        self._catalog.validate_text(text)

    def stream(self, request: SynthesisRequest) -> RemoteStream:
        """Check `request` (raises MediaServerError at once); the worker admits it on first use of the stream."""
        self._require_voices()
        voice, language = self._catalog.admit(request)
        return RemoteStream(self._supervisor, request, voice, language)

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """Clone a voice in the worker (the reference audio follows the request as one audio frame)."""
        message = {"op": "create_voice", "sample_rate": sample_rate, "transcript": transcript, "name": name}
        reply = await self._supervisor.call(message, pcm_to_wire(reference))
        self._catalog.update([voice_from_wire(fields) for fields in reply["voices"]])
        return voice_from_wire(reply["voice"])

    async def delete_voice(self, voice_id: str) -> None:
        reply = await self._supervisor.call({"op": "delete_voice", "voice_id": voice_id})
        self._catalog.update([voice_from_wire(fields) for fields in reply["voices"]])

    def stats(self) -> EngineStats:
        if self.health():
            return self._stats
        return replace(self._stats, ready=False, active=0, queued=0, parked=0)

    def _require_voices(self) -> None:
        """Mark the worker used (starting it if it is not running); refuse until its voices were ever known.

        After an idle stop the voices are still known: requests are checked
        and wait for the worker to come back.
        """
        self._supervisor.wake()
        if not self._catalog.voices():
            raise NotReady("the speech worker is loading; retry in a moment")

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
