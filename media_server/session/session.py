"""Session: speak, append, flush and cancel over any audio output; the spine every utterance travels through.

One session per client connection, whatever carries it (a WebRTC data
channel and track, a WebSocket, a telephony stream). It is built in one step
from an engine, an audio output, an event sink and its limits; the transport
only feeds it client messages (`handle`, or `dispatch` of commands it parsed
itself) and writes the typed events it emits (`events.py`) in its protocol.

Utterances are played one after another by the session's player task, which
streams each from the engine into the output. The output reports what
actually left it (`output.py`'s playout events), so `audio_start`, `done` and
the `played_ms` of a `cancelled` utterance describe what the listener got.
Each chunk's word timings are written with it, in the utterance's time (its
segments one after another), and come back as `words` events when their
first sample leaves; a `cancelled` utterance's `spoken_text` is the words
that had played whole.
This module alone turns errors into `error` events (`error_event`); their messages are cut
to `MAX_EVENT_MESSAGE_CHARS`, so an error quoting a client's value never
makes an event larger than the message that caused it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Protocol

from media_server.audio.resample import Resampler
from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.engine.types import AudioChunk, DictionaryLocator, Priority, RequestTimings, SynthesisRequest
from media_server.errors import Busy, InvalidRequest, MediaServerError, NothingToSpeak, RateLimited, TextTooLong
from media_server.observability.logging import LatencyBreakdown
from media_server.ratelimit import MessageRate
from media_server.session.commands import Append, Cancel, Command, Flush, Speak, new_utterance_id, parse_command
from media_server.session.events import (
    AudioStart,
    Cancelled,
    Done,
    Ended,
    Error,
    EventSink,
    Started,
    Word,
    Words,
)
from media_server.session.output import AudioOutput, Cue, PlayoutEnd, PlayoutEvent, PlayoutStart, PlayoutWords
from media_server.text.segmenter import Segmenter, SegmenterPolicy

log = logging.getLogger(__name__)

MAX_EVENT_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class SessionLimits:
    """What one session may be asked for."""

    max_text_chars: int
    """Characters of one appended utterance (a `speak` is checked by the engine)."""
    max_message_bytes: int
    messages_per_second: float
    """Client messages of any kind, in bursts of as many (0: no limit)."""
    max_queued_utterances: int
    """Utterances admitted and not yet ended."""
    first_segment_words: int
    """Appended text is spoken once a clause ends, or at the first this many words."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionLimits:
        return cls(
            max_text_chars=settings.max_text_chars,
            max_message_bytes=settings.max_message_bytes,
            messages_per_second=settings.max_messages_per_second,
            max_queued_utterances=settings.max_queued_utterances,
            first_segment_words=settings.first_segment_words,
        )


class SessionObserver(Protocol):
    """The numbers a session reports (metrics)."""

    def session(self, route: str) -> AbstractContextManager[None]:
        """Count a live session on `route` while the returned context is open."""

    def observe_ttfa(self, route: str, seconds: float) -> None: ...

    def observe_chunk_gap(self, route: str, seconds: float) -> None: ...


@dataclass
class Utterance:
    """One utterance of a session: its text segments as they arrive (None closes them) and what its audio did."""

    id: str
    voice: str | None
    speed: float = 1.0
    ssml: bool = False
    dictionaries: tuple[DictionaryLocator, ...] = ()
    language: str | None = None
    """Decided by its first segment; later segments are spoken in it."""
    texts: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    text_at: float | None = None
    chars: int = 0
    failed: bool = False
    timings: RequestTimings | None = None
    first_sent_at: float | None = None
    played_out_at: float = 0.0
    """When the audio written so far will have played, if playout started when it was written."""
    written_s: float = 0.0
    """Seconds of the utterance's audio written so far (its segments back to back)."""
    words: list[Word] = field(default_factory=list)
    """Its words written so far, in the utterance's time."""

    def spoken_text(self, played_ms: int) -> str:
        """The words that had played whole after `played_ms`."""
        return " ".join(word.word for word in self.words if word.end_ms <= played_ms)

    def wrote(self, seconds: float, now: float) -> None:
        self.played_out_at = max(self.played_out_at, now) + seconds

    def next_deadline(self, now: float) -> float | None:
        """When the listener needs the next segment's audio: once what was written has played."""
        return self.played_out_at if self.played_out_at > now else None

    def add_text(self, text: str) -> None:
        if self.text_at is None:
            self.text_at = time.monotonic()
        self.chars += len(text)
        self.texts.put_nowait(text)

    def close(self) -> None:
        self.texts.put_nowait(None)


def _nothing() -> None:
    pass


def error_event(exc: MediaServerError, utterance_id: str | None = None) -> Error:
    """`exc` as an `error` event, its message cut to `MAX_EVENT_MESSAGE_CHARS` (about `utterance_id` when it
    failed one); for a transport that answers a message the session never saw."""
    message = exc.message
    if len(message) > MAX_EVENT_MESSAGE_CHARS:
        message = message[: MAX_EVENT_MESSAGE_CHARS - 1] + "…"
    estimate = exc.estimate_ms if isinstance(exc, Busy) else None
    return Error(
        code=exc.code,
        message=message,
        id=utterance_id,
        retry_after_s=exc.retry_after_s,
        estimated_ttfa_ms=None if estimate is None else round(estimate),
    )


class Session:
    """One client's speech: utterances admitted from its commands, played in order into its output."""

    def __init__(
        self,
        engine: Engine,
        output: AudioOutput,
        events: EventSink,
        limits: SessionLimits,
        route: str,
        observer: SessionObserver | None = None,
        voice: str | None = None,
        on_activity: Callable[[], None] = _nothing,
    ) -> None:
        """Start playing into `output`, emitting events to `events`; `on_activity` is called on every message."""
        self.route = route
        self._engine = engine
        self._output = output
        self._emit = events
        self._limits = limits
        self._observer = observer
        self._voice = voice
        self._language: str | None = None
        """The language the session has been speaking: assumed for text that does not clearly say."""
        self._on_activity = on_activity
        self._queue: asyncio.Queue[Utterance] = asyncio.Queue()
        self._live: dict[str, Utterance] = {}
        self._open: Utterance | None = None
        self._segmenter = Segmenter(SegmenterPolicy(first_segment_words=limits.first_segment_words))
        self._retired: set[asyncio.Task[None]] = set()
        self._after: dict[str | None, list[Callable[[], None]]] = {}
        self._idle = asyncio.Event()
        self._message_rate = MessageRate(limits.messages_per_second)
        self._counted = ExitStack()
        if observer is not None:
            self._counted.enter_context(observer.session(route))
        output.report_to(self._on_playout)
        self._player = self._start_player()

    def admit(self) -> bool:
        """Count one client message, of any kind, against the session's rate: False when it is to be dropped
        (the first drop in a row is answered with a `rate_limited` event)."""
        self._on_activity()
        try:
            return self._message_rate.admit()
        except RateLimited as exc:
            self.report_error(exc)
            return False

    def handle(self, raw: str | bytes) -> None:
        """Handle one client message; a bad one gets an `error` event and changes nothing."""
        if not self.admit():
            return
        try:
            self.dispatch(parse_command(raw, self._limits.max_message_bytes))
        except MediaServerError as exc:
            self.report_error(exc)

    def dispatch(self, command: Command) -> None:
        """Carry out one parsed command; raises MediaServerError when it is refused."""
        match command:
            case Speak():
                self._speak(command)
            case Append():
                self._append(command)
            case Flush():
                self._flush()
            case Cancel():
                self._cancel()

    def report_error(self, exc: MediaServerError, utterance_id: str | None = None) -> None:
        """Emit `exc` as an `error` event (about `utterance_id` when it failed one)."""
        self._emit(error_event(exc, utterance_id))

    def after_queued(self, action: Callable[[], None]) -> None:
        """Run `action` once every utterance admitted so far has ended (done, failed or cancelled)."""
        if not self._live:
            action()
        else:
            self._after.setdefault(next(reversed(self._live)), []).append(action)

    async def wait_idle(self) -> None:
        """Return once no utterance is queued, synthesizing or playing."""
        while self._live:
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        """Stop the player (and any player a cancel retired); the output is its owner's to close."""
        tasks = [*self._retired, self._player]
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._counted.close()

    def _on_playout(self, playout: PlayoutEvent) -> None:
        match playout:
            case PlayoutStart(utterance_id=utterance_id) if utterance_id in self._live:
                self._audio_started(self._live[utterance_id])
            case PlayoutWords(utterance_id=utterance_id) if utterance_id in self._live:
                self._emit(Words(id=utterance_id, words=playout.words))
            case PlayoutEnd(utterance_id=utterance_id) if utterance_id in self._live:
                self._ended(self._live[utterance_id], playout.played_samples)

    def _audio_started(self, utterance: Utterance) -> None:
        now = time.monotonic()
        utterance.first_sent_at = now
        ttfa_s = now - (utterance.text_at or now)
        if self._observer is not None:
            self._observer.observe_ttfa(self.route, ttfa_s)
        self._emit(AudioStart(id=utterance.id, ttfa_ms=round(ttfa_s * 1000, 1)))

    def _ended(self, utterance: Utterance, played_samples: int) -> None:
        del self._live[utterance.id]
        if not self._live:
            self._idle.set()
        if not utterance.failed:
            self._emit(Done(id=utterance.id, audio_ms=played_samples * 1000 // self._output.sample_rate))
            self._log_breakdown(utterance, time.monotonic(), played_samples / self._output.sample_rate)
        self._emit(Ended(id=utterance.id))
        for action in self._after.pop(utterance.id, []):
            action()

    def _speak(self, command: Speak) -> None:
        self._engine.validate_text(command.text)
        utterance = self._admit(command.id, command.voice, command.speed, command.ssml, command.dictionaries)
        utterance.add_text(command.text)
        utterance.close()

    def _append(self, command: Append) -> None:
        pending = len(self._segmenter.pending) + len(command.text)
        if self._open is not None:
            pending += self._open.chars
        if pending > self._limits.max_text_chars:
            raise TextTooLong(
                f"text: the appended utterance would be {pending} characters, "
                f"over the limit of {self._limits.max_text_chars}"
            )
        if self._open is None:
            self._open = self._admit(
                new_utterance_id(), command.voice, command.speed, dictionaries=command.dictionaries
            )
        for segment in self._segmenter.append(command.text):
            self._open.add_text(segment)

    def _flush(self) -> None:
        if self._open is None:
            return
        for segment in self._segmenter.flush():
            self._open.add_text(segment)
        self._open.close()
        self._open = None

    def _cancel(self) -> None:
        cut_id, played_samples = self._output.clear()
        self._player.cancel()
        self._retired.add(self._player)
        self._player.add_done_callback(self._retired.discard)
        self._player = self._start_player()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._segmenter.flush()
        self._open = None
        cancelled: list[Utterance | None] = [*self._live.values()] or [None]
        self._live.clear()
        self._idle.set()
        for utterance in cancelled:
            if utterance is None:
                self._emit(Cancelled(id=None, played_ms=0))
                continue
            played = played_samples if utterance.id == cut_id else 0
            played_ms = played * 1000 // self._output.sample_rate
            self._emit(Cancelled(id=utterance.id, played_ms=played_ms, spoken_text=utterance.spoken_text(played_ms)))
        for actions in self._after.values():
            for action in actions:
                action()
        self._after.clear()

    def _admit(
        self,
        utterance_id: str,
        voice: str | None,
        speed: float,
        ssml: bool = False,
        dictionaries: tuple[DictionaryLocator, ...] = (),
    ) -> Utterance:
        if utterance_id in self._live:
            raise InvalidRequest(f"id: {utterance_id!r} is taken by an utterance of this session that has not ended")
        resolved = self._engine.resolve_voice(voice or self._voice)
        if len(self._live) >= self._limits.max_queued_utterances:
            raise Busy(f"this session already has {len(self._live)} utterances queued")
        utterance = Utterance(id=utterance_id, voice=resolved.id, speed=speed, ssml=ssml, dictionaries=dictionaries)
        self._live[utterance.id] = utterance
        self._queue.put_nowait(utterance)
        return utterance

    def _start_player(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._play_forever(), name="speech-player")

    async def _play_forever(self) -> None:
        while True:
            utterance = await self._queue.get()
            await self._play(utterance)

    async def _play(self, utterance: Utterance) -> None:
        output = self._output
        resampler: Resampler | None = None
        last_chunk_at: float | None = None
        try:
            while (text := await utterance.texts.get()) is not None:
                request = SynthesisRequest(
                    text=text,
                    voice=utterance.voice,
                    language=utterance.language or "auto",
                    speed=utterance.speed,
                    ssml=utterance.ssml,
                    pronunciation_dictionaries=utterance.dictionaries,
                    priority=Priority.REALTIME,
                    fallback_language=self._language,
                    deadline=utterance.next_deadline(time.monotonic()),
                )
                async with self._engine.stream(request) as chunks:
                    utterance.language = self._language = chunks.language
                    if utterance.timings is None:
                        utterance.timings = chunks.timings
                        self._emit(Started(id=utterance.id, voice=chunks.voice.id, language=chunks.language))
                    segment_at_s = utterance.written_s
                    async for chunk in chunks:
                        now = time.monotonic()
                        if last_chunk_at is not None and self._observer is not None:
                            self._observer.observe_chunk_gap(self.route, now - last_chunk_at)
                        last_chunk_at = now
                        resampler = resampler or Resampler(chunk.sample_rate, output.sample_rate)
                        pcm = resampler.process(chunk.pcm)
                        cues = self._cues(utterance, chunk, segment_at_s, len(pcm))
                        utterance.wrote(chunk.duration_s, now)
                        utterance.written_s += chunk.duration_s
                        await output.write(utterance.id, pcm, cues)
            if utterance.timings is None:
                raise NothingToSpeak("text: the utterance had no letter or digit to speak")
        except MediaServerError as exc:
            utterance.failed = True
            self.report_error(exc, utterance.id)
            output.discard(utterance.id)
        else:
            if resampler is not None:
                await output.write(utterance.id, resampler.flush())
        output.end(utterance.id)

    def _cues(self, utterance: Utterance, chunk: AudioChunk, segment_at_s: float, samples: int) -> list[Cue]:
        """The chunk's words in the utterance's time, each cued at the sample of the written audio it starts at."""
        cues: list[Cue] = []
        chunk_at_s = utterance.written_s - segment_at_s
        for timing in chunk.words:
            word = Word(
                word=timing.word,
                start_ms=round((segment_at_s + timing.start_s) * 1000),
                end_ms=round((segment_at_s + timing.end_s) * 1000),
                estimated=timing.estimated,
            )
            utterance.words.append(word)
            at = round((timing.start_s - chunk_at_s) * self._output.sample_rate)
            cues.append((min(max(at, 0), max(samples - 1, 0)), word))
        return cues

    def _log_breakdown(self, utterance: Utterance, now: float, audio_s: float) -> None:
        timings = utterance.timings or RequestTimings()
        received = utterance.text_at or now
        LatencyBreakdown(
            utterance_id=utterance.id,
            route=self.route,
            text_chars=utterance.chars,
            text_prep_s=timings.text_prep_s,
            queue_wait_s=timings.queue_wait_s,
            first_chunk_s=timings.first_step_s,
            first_send_s=(utterance.first_sent_at or now) - received,
            total_s=now - received,
            audio_s=audio_s,
        ).log(log)
