"""`LocalCore`: the engine core in this process: one backend, the scheduler that drives it, the audio cache.

It satisfies `EngineCore` (`seam.py`): the front (`front.py`) checks a request,
then `submit` queues it here and returns its `LocalStream`. The core owns the
model's lifecycle: load at start (`PRELOAD_MODEL`) or on first use, unload after
`IDLE_TIMEOUT` unused and reload on the next request; the loudness gain of each
voice, measured once; and real-time admission by the first-audio budget, which
needs the queue's live state and so lives where the queue is.

The gateway's worker process runs one of these behind its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from media_server.audio.effects import loudness_gain
from media_server.config import Settings
from media_server.engine.backends import create_backend
from media_server.engine.backends.base import Backend, VoiceCloner
from media_server.engine.cache import AudioCache
from media_server.engine.observer import EngineObserver
from media_server.engine.pipeline import RequestPipeline
from media_server.engine.scheduler import Scheduler, StepResult
from media_server.engine.stream import Result, ResultStream
from media_server.engine.types import EngineStats, Pcm, Priority, SynthesisRequest, Voice
from media_server.errors import Busy, EngineError, InvalidRequest, MediaServerError

log = logging.getLogger(__name__)

LOUDNESS_PROBE = "This is how this voice sounds when it reads a sentence aloud."


class LocalStream(ResultStream):
    """A request's audio as the scheduler's worker threads make it."""

    def __init__(self, core: LocalCore, pipeline: RequestPipeline) -> None:
        super().__init__(pipeline.request, pipeline.voice, pipeline.language, pipeline.timings)
        self._core = core
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[StepResult] = asyncio.Queue()

    def deliver(self, result: StepResult) -> None:
        """Called from an engine thread with each step's result."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, result)
        except RuntimeError:
            log.debug("dropping audio for %s: its event loop is closed", self.request.id)

    async def _receive(self) -> Result:
        result = await self._queue.get()
        if isinstance(result, BaseException) and not isinstance(result, MediaServerError):
            return EngineError(f"synthesis failed: {result}")
        return result

    def _took(self) -> None:
        self._core.consumed(self.request.id)

    def _stop(self, early: bool) -> None:
        if early:
            self._core.abort(self.request.id)


class LocalCore:
    """Owns one backend, the scheduler that drives it, and the audio cache."""

    def __init__(self, settings: Settings, backend: Backend[Any] | None = None) -> None:
        self._settings = settings
        self._backend = backend or create_backend(settings)
        self._scheduler = Scheduler(
            self._backend,
            workers=settings.engine_workers,
            max_queue=settings.max_queue,
            max_batch_queue=settings.max_batch_queue,
            max_outstanding=settings.engine_max_outstanding,
        )
        deterministic = (self._backend.name,) if self._backend.deterministic else ()
        self._cache = AudioCache(settings.audio_cache_bytes, deterministic_backends=deterministic)
        self._voices: dict[str, Voice] = {}
        self._gains: dict[str, float] = {}
        self._ready = False
        self._lifecycle = asyncio.Lock()
        self._loading: asyncio.Task[float] | None = None
        self._idle_watch: asyncio.Task[None] | None = None
        self._used_at = time.monotonic()

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @property
    def state(self) -> str:
        """`ready`, `loading`, or `idle` (not loaded: before first use, or unloaded when idle)."""
        if self._ready:
            return "ready"
        return "loading" if self._loading is not None and not self._loading.done() else "idle"

    def observe(self, observer: EngineObserver) -> None:
        self._scheduler.observe(observer)

    async def start(self) -> float | None:
        """Load and warm the backend now (`PRELOAD_MODEL`), or leave it for the first request.

        With `IDLE_TIMEOUT`, a task unloads the backend after that long unused.
        """
        if self._settings.idle_timeout > 0:
            self._idle_watch = asyncio.create_task(self._unload_when_idle(), name="engine-idle")
        if not self._settings.preload_model:
            return None
        return await self._load()

    async def stop(self) -> None:
        for task in (self._idle_watch, self._loading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._unload("stopping")

    def health(self) -> bool:
        """Loaded and not stuck: no synthesis step has run longer than `WORKER_STALL_TIMEOUT`."""
        return self._ready and self._scheduler.longest_step_s <= self._settings.worker_stall_timeout

    def wake(self) -> None:
        """Mark the core used; start loading the backend if it is not loaded.

        Requests are admitted while it reloads (they wait in the queue); before
        the very first load the voices are not known, and the front refuses them.
        """
        self._used_at = time.monotonic()
        if not self._ready and (self._loading is None or self._loading.done()):
            self._loading = asyncio.create_task(self._load(), name="engine-load")

    def voices(self) -> Sequence[Voice]:
        return tuple(self._voices.values())

    def submit(self, request: SynthesisRequest, voice: Voice, language: str) -> LocalStream:
        if request.priority == Priority.REALTIME and self._settings.ttfa_budget_ms > 0:
            self._check_budget()
        pipeline = RequestPipeline(
            request,
            voice,
            language,
            gain=self._gains.get(voice.id, 1.0),
            cache=self._cache,
            native_speed=self._backend.native_speed,
        )
        stream = LocalStream(self, pipeline)
        self._scheduler.submit(pipeline, stream.deliver)
        return stream

    def abort(self, request_id: str) -> None:
        self._scheduler.abort(request_id)

    def consumed(self, request_id: str) -> None:
        self._scheduler.consumed(request_id)

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """Clone a voice (or find the one already cloned from this reference) and make it usable."""
        cloner = self._cloner()
        voice = await asyncio.to_thread(cloner.create_voice, reference, sample_rate, transcript, name)
        if voice.id not in self._voices:
            self._gains[voice.id] = await asyncio.to_thread(self._measure_gain, voice)
            self._voices[voice.id] = voice
        return voice

    async def delete_voice(self, voice_id: str) -> None:
        cloner = self._cloner()
        await asyncio.to_thread(cloner.delete_voice, voice_id)
        self._voices.pop(voice_id, None)
        self._gains.pop(voice_id, None)

    def stats(self) -> EngineStats:
        counters = self._scheduler.counters
        return EngineStats(
            backend=self._backend.name,
            ready=self._ready,
            active=self._scheduler.running,
            queued=self._scheduler.pending,
            parked=self._scheduler.parked,
            max_queue=self._scheduler.max_queue,
            completed=counters.completed,
            cancelled=counters.cancelled,
            failed=counters.failed,
            refused=counters.refused,
            steps=counters.steps,
            last_batch=counters.last_batch,
            audio_s=counters.audio_s,
            busy_s=counters.busy_s,
            cache_bytes=self._cache.stats().bytes,
            silent=counters.silent,
            longest_step_s=self._scheduler.longest_step_s,
            queued_batch=self._scheduler.pending_batch,
            max_batch_queue=self._scheduler.max_batch_queue,
            late_chunks=counters.late,
        )

    def first_audio_estimate_s(self, ahead: int = 0) -> float:
        """When a real-time request admitted now would get its first audio (the scheduler's estimate), with
        `ahead` more fresh real-time requests before it."""
        return self._scheduler.estimate_first_audio_s(ahead)

    @property
    def deterministic(self) -> bool:
        """Whether the backend always makes the same samples for the same request (a resume may skip samples)."""
        return self._backend.deterministic

    async def _load(self) -> float:
        async with self._lifecycle:
            if self._ready:
                return 0.0
            started = time.monotonic()
            await asyncio.to_thread(self._load_backend)
            self._scheduler.start()
            self._ready = True
            self._used_at = time.monotonic()
            seconds = time.monotonic() - started
            log.info("%s backend ready in %.2f s", self._backend.name, seconds)
            return seconds

    def _load_backend(self) -> None:
        self._backend.load()
        for voice in self._backend.voices():
            if voice.id not in self._gains:
                self._gains[voice.id] = self._measure_gain(voice)
            self._voices[voice.id] = voice

    async def _unload(self, why: str) -> None:
        async with self._lifecycle:
            if not self._ready:
                return
            self._ready = False
            await asyncio.to_thread(self._scheduler.stop)
            await asyncio.to_thread(self._backend.unload)
            log.info("%s backend unloaded (%s)", self._backend.name, why)

    async def _unload_when_idle(self) -> None:
        idle_s = self._settings.idle_timeout
        while True:
            await asyncio.sleep(min(idle_s / 4, 5.0))
            if self._ready and not self._scheduler.pending and time.monotonic() - self._used_at > idle_s:
                await self._unload(f"unused for {idle_s:g} s")

    def _measure_gain(self, voice: Voice) -> float:
        """The gain that brings `voice` to the target loudness, measured on a sample sentence."""
        sequence = self._backend.open(SynthesisRequest(text=LOUDNESS_PROBE, voice=voice.id), voice)
        parts: list[Pcm] = []
        try:
            while (pcm := self._backend.step([sequence])[0]) is not None:
                parts.append(pcm)
        finally:
            self._backend.close(sequence)
        return loudness_gain(np.concatenate(parts), voice.sample_rate, self._settings.loudness_lufs)

    def _cloner(self) -> VoiceCloner:
        self.wake()
        if not isinstance(self._backend, VoiceCloner):
            raise InvalidRequest(
                f"reference_audio: the {self._backend.name} backend cannot clone voices; "
                "use TTS_BACKEND=qwen with a Qwen3-TTS Base checkpoint"
            )
        return self._backend

    def _check_budget(self) -> None:
        estimate_ms = self._scheduler.estimate_first_audio_s() * 1000
        budget_ms = self._settings.ttfa_budget_ms
        if estimate_ms > budget_ms:
            self._scheduler.refuse()
            raise Busy(
                f"first audio would come in about {estimate_ms:.0f} ms, over the {budget_ms:.0f} ms budget",
                retry_after_s=max(1.0, estimate_ms / 1000),
                estimate_ms=estimate_ms,
            )
