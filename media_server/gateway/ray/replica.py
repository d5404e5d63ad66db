"""`EngineReplica`: one engine core (a `LocalCore`: scheduler, backend, cache) as a Ray Serve replica.

Gateways call `synthesize` with one utterance (`calls.Call`) and stream back
its items. The replica speaks the call's segments one after another, each an
engine request of the call's priority whose deadline is when the listener will
have played the audio before it, so its own scheduler orders the work of every
gateway by priority and deadline. Serve never queues a call in front of it: the
deployment's ongoing-request cap is what this scheduler admits
(`MAX_QUEUE` real-time + `MAX_BATCH_QUEUE` batch, `cluster.engine_app`), and a
request past a queue is refused by the scheduler at once (`busy`).

A call cancelled by its gateway (barge-in, hang-up, a client gone) cancels this
generator at its `await`: leaving the engine stream's `async with` aborts the
request, whose slot frees at the engine's next step.

A cloned voice reaches a replica as the call's multiplexed model id (the voice
id): Serve routes the call to a replica that has it loaded when there is one,
else this replica loads it from the reference the gateway left on the board.

The model's libraries are imported in `__init__`, which runs in the replica:
a gateway imports this module (to deploy it) without loading any of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import ray
from ray import serve

from media_server.config import Settings
from media_server.engine.types import Priority, Voice
from media_server.errors import EngineError, MediaServerError, UnknownVoice
from media_server.gateway.events import EventBuffer
from media_server.gateway.ray.board import REPORT_INTERVAL_S, Clone, board_handle
from media_server.gateway.ray.calls import Audio, Call, Failure, Start, item_to_wire
from media_server.gateway.ray.policy import Report
from media_server.gateway.wire import Message, pcm_from_wire

if TYPE_CHECKING:
    from media_server.engine.core import LocalCore

log = logging.getLogger(__name__)

MAX_CLONES_PER_REPLICA = 16
"""Cloned voices one replica keeps loaded (least recently used ones are dropped first)."""


class EngineReplica:
    """A Serve deployment class: `cluster.engine_app` wraps it with `serve.deployment`."""

    async def __init__(self, settings: Settings) -> None:  # type: ignore[misc]  # Serve awaits an async __init__
        from media_server.engine.core import LocalCore

        self._settings = replace(settings, preload_model=True, idle_timeout=0.0)
        self._core: LocalCore = LocalCore(self._settings)
        self._events = EventBuffer()
        self._core.observe(self._events)
        self._id = serve.get_replica_context().replica_id.unique_id
        self._calls: Counter[Priority] = Counter()
        """Calls in progress here, by priority."""
        self._reports = 0
        self._board = board_handle()
        await self._core.start()
        # Runs as long as the replica's process: Serve stops a replica by ending its actor.
        self._reporter = asyncio.create_task(self._report_forever(), name="replica-report")

    async def synthesize(self, fields: Message) -> AsyncIterator[tuple[Any, ...]]:
        """Stream one call's items (`calls.item_to_wire`); a refusal or failure is its last item."""
        call = Call.from_wire(fields)
        priority = call.request.priority
        self._calls[priority] += 1
        try:
            voice = await self._voice(call.request.voice or "")
            async for item in self._speak(call, voice):
                yield item_to_wire(item)
        except MediaServerError as exc:
            yield item_to_wire(Failure(exc))
        finally:
            self._calls[priority] -= 1

    async def _speak(self, call: Call, voice: Voice) -> AsyncIterator[Start | Audio]:
        played_out_at = 0.0  # when the listener will have played what was sent (this replica's clock)
        skip = call.skip_samples
        deterministic = self._core.deterministic
        for index in range(call.first_segment, len(call.segments)):
            now = time.monotonic()
            first = index == call.first_segment
            request = replace(
                call.request,
                text=call.segments[index],
                id=f"{call.request.id}/{index}",
                received_at=call.request.received_at if first else now,
                deadline=call.request.deadline if first else (played_out_at if played_out_at > now else None),
            )
            async with self._core.submit(request, voice, call.request.language) as stream:
                await stream.wait_ready()
                if first:
                    yield Start(replica=self._id, deterministic=deterministic, timings=stream.timings)
                skipped_s = skip / voice.sample_rate  # a re-issue resumes this far into its first segment
                async for chunk in stream:
                    pcm = chunk.pcm
                    if skip:
                        pcm, skip = pcm[skip:], max(0, skip - len(pcm))
                    words = chunk.words
                    if skipped_s:  # only a re-issue's first segment: its words move to where the listener is
                        words = tuple(
                            replace(word, start_s=word.start_s - skipped_s, end_s=word.end_s - skipped_s)
                            for word in words
                            if word.start_s >= skipped_s
                        )
                    if len(pcm) or words:
                        played_out_at = max(played_out_at, time.monotonic()) + len(pcm) / voice.sample_rate
                        yield Audio(segment=index, pcm=pcm, words=words)
                skipped_s = 0.0

    async def voices(self) -> list[Message]:
        return [asdict(voice) for voice in self._core.voices()]

    async def create_voice(self, reference: bytes, sample_rate: int, transcript: str | None, name: str) -> Message:
        """Clone a voice here and leave its reference on the board for every other replica."""
        voice = await self._core.create_voice(pcm_from_wire(reference), sample_rate, transcript, name)
        await self._board.add_clone.remote(voice.id, Clone(asdict(voice), reference, sample_rate, transcript, name))
        return asdict(voice)

    async def delete_voice(self, voice_id: str) -> None:
        await self._board.remove_clone.remote(voice_id)
        await self._core.delete_voice(voice_id)

    def check_health(self) -> None:
        """Serve's health check: a replica whose model is not loaded, or whose step is stuck, is replaced."""
        if not self._core.health():
            raise EngineError("the engine core is not healthy (not loaded, or a synthesis step is stuck)")

    def record_routing_stats(self) -> dict[str, float]:
        """What the slack router (`routing.py`) ranks replicas by (Serve's alpha request-router API)."""
        return self._report().to_stats()

    def record_autoscaling_stats(self) -> dict[str, float]:
        """What the scaling policy (`scaling.py`) decides by (Serve's alpha custom-metrics API)."""
        report = self._report()
        return {
            "first_audio_estimate_s": report.first_audio_estimate_s,
            "batch_occupancy": report.batch_occupancy,
            "late_chunks": report.late_chunks,
        }

    async def _voice(self, voice_id: str) -> Voice:
        model_id = serve.get_multiplexed_model_id()
        if model_id:
            clone: Voice = await self._clone(model_id)
            return clone
        voice = next((voice for voice in self._core.voices() if voice.id == voice_id), None)
        if voice is None:
            raise UnknownVoice(f"voice: {voice_id!r} is not a voice of this replica")
        return voice

    @serve.multiplexed(max_num_models_per_replica=MAX_CLONES_PER_REPLICA)  # type: ignore[untyped-decorator]
    async def _clone(self, voice_id: str) -> Voice:
        """A cloned voice, loaded here from the reference on the board if this replica has not made it yet."""
        known = next((voice for voice in self._core.voices() if voice.id == voice_id), None)
        if known is not None:
            return known
        clone: Clone | None = await self._board.clone.remote(voice_id)
        if clone is None:
            raise UnknownVoice(f"voice: unknown voice {voice_id!r} (deleted, or never cloned in this cluster)")
        return await self._core.create_voice(
            pcm_from_wire(clone.reference), clone.sample_rate, clone.transcript, clone.name
        )

    def _report(self) -> Report:
        self._reports += 1
        estimate_s = self._core.first_audio_estimate_s()
        return Report(
            report=float(self._reports),
            slack_s=self._settings.ttfa_budget_ms / 1000 - estimate_s,
            first_audio_estimate_s=estimate_s,
            added_call_s=self._core.first_audio_estimate_s(ahead=1) - estimate_s,
            realtime_calls=float(self._calls[Priority.REALTIME]),
            batch_calls=float(self._calls[Priority.BATCH]),
            batch_capacity=float(self._settings.max_batch_queue),
            late_chunks=float(self._core.stats().late_chunks),
        )

    async def _report_forever(self) -> None:
        node = ray.get_runtime_context().get_node_id()
        while True:
            report = {"stats": asdict(self._core.stats()), "report": self._report().to_stats(), "node": node}
            try:
                await self._board.post.remote(self._id, report, self._events.drain())
            except Exception:  # the board restarts when its node goes; the next post reaches the new one
                log.warning("replica %s could not post to the engine board", self._id, exc_info=True)
            await asyncio.sleep(REPORT_INTERVAL_S)
