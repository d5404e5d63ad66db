"""Fakes at the session's seams, for unit tests: an engine that yields scripted chunks, an output whose playout
the test drives, an observer that counts; and `until`, which lets the loop run until a condition holds.

`FakeCore` stands under an engine front: it records what it is handed and
admits its first `admits` requests as `FakeStream`s in the voice they were
given.

A script is the list of steps one request's stream takes: a number (a chunk
of that many samples), a MediaServerError (raised there, as a synthesis that
fails), or an asyncio.Event (the stream waits for it: a chunk that has not
come yet). Nothing here sleeps; the only timeout guards against a hang.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType

import numpy as np

from media_server.config import Settings
from media_server.engine.dictionaries import DictionaryStore
from media_server.engine.observer import EngineObserver
from media_server.engine.types import AudioChunk, EngineStats, Pcm, RequestTimings, SynthesisRequest, Voice, WordTiming
from media_server.errors import Busy, InvalidRequest, MediaServerError, UnknownVoice
from media_server.session.output import Cue, PlayoutListener, PlayoutQueue, no_listener

RATE = 24000
VOICE = Voice(id="fake", name="Fake", backend="fake", languages=("en",), sample_rate=RATE)
CHUNK = 480  # 20 ms at RATE
DEFAULT_SCRIPT: tuple[int, ...] = (CHUNK, CHUNK)
AMPLITUDE = 1000

Step = int | MediaServerError | asyncio.Event


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let the event loop run until `condition` holds (the timeout only guards against a hang)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110  (a test waits for a state of the code under test, which has no event)
            await asyncio.sleep(0)


class FakeStream:
    """One request's audio, following its script."""

    def __init__(
        self, request: SynthesisRequest, steps: Sequence[Step], timed: bool = False, voice: Voice = VOICE
    ) -> None:
        self.request = request
        self._words = request.text.split() if timed else []
        self.voice = voice
        self.language = "en"
        self.sample_rate = voice.sample_rate
        self.timings = RequestTimings()
        self.closed = False
        self._steps = iter(steps)
        self._index = 0

    async def wait_ready(self) -> None:
        pass

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> AudioChunk:
        for step in self._steps:
            if isinstance(step, asyncio.Event):
                await step.wait()
            elif isinstance(step, MediaServerError):
                raise step
            else:
                pcm = np.full(step, AMPLITUDE, dtype=np.int16)
                chunk = AudioChunk(pcm, self.sample_rate, self.request.id, self._index, self._said(step))
                self._index += 1
                return chunk
        raise StopAsyncIteration

    def _said(self, samples: int) -> tuple[WordTiming, ...]:
        """With `timed`, each chunk says the text's next word over its whole length (chunks of equal size)."""
        if self._index >= len(self._words):
            return ()
        start = self._index * samples / self.sample_rate
        return (WordTiming(self._words[self._index], start, start + samples / self.sample_rate),)

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """An engine with one voice that speaks each text by its script (`DEFAULT_SCRIPT` unless told), or refuses
    it at admission (`refusals`)."""

    def __init__(
        self,
        scripts: Mapping[str, Sequence[Step]] | None = None,
        refusals: Mapping[str, MediaServerError] | None = None,
        timed: bool = False,
    ) -> None:
        """`timed`: each chunk carries the timing of the next word of its request's text."""
        self.scripts = dict(scripts or {})
        self.timed = timed
        self.refusals = dict(refusals or {})
        self.requests: list[SynthesisRequest] = []
        self.streams: list[FakeStream] = []
        self.dictionaries = DictionaryStore(Settings())

    @property
    def backend_name(self) -> str:
        return "fake"

    @property
    def state(self) -> str:
        return "ready"

    async def start(self) -> float | None:
        return 0.0

    async def stop(self) -> None:
        pass

    def observe(self, observer: EngineObserver) -> None:
        pass

    def health(self) -> bool:
        return True

    def voices(self) -> Sequence[Voice]:
        return [VOICE]

    def resolve_voice(self, voice_id: str | None, language: str | None = None) -> Voice:
        if voice_id not in (None, VOICE.id):
            raise UnknownVoice(f"voice: unknown voice {voice_id!r}; available: {VOICE.id}")
        return VOICE

    def validate_text(self, text: str) -> None:
        pass

    def stream(self, request: SynthesisRequest) -> FakeStream:
        self.requests.append(request)
        refusal = self.refusals.get(request.text)
        if refusal is not None:
            raise refusal
        stream = FakeStream(request, self.scripts.get(request.text, DEFAULT_SCRIPT), self.timed)
        self.streams.append(stream)
        return stream

    def stats(self) -> EngineStats:
        return replace(EngineStats.idle("fake", max_queue=0, max_batch_queue=0), ready=True)

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        raise InvalidRequest("reference: the fake engine does not clone voices")

    async def delete_voice(self, voice_id: str) -> None:
        raise InvalidRequest("voice: the fake engine has no cloned voices")


@dataclass
class FakeCore:
    """An engine core that records what it is handed, admits its first `admits` requests, and refuses the rest."""

    known: tuple[Voice, ...] = ()
    admits: int = 1_000_000
    script: tuple[Step, ...] = DEFAULT_SCRIPT
    submitted: list[tuple[SynthesisRequest, Voice, str]] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    woken: int = 0
    backend_name: str = "fake"
    state: str = "ready"

    def wake(self) -> None:
        self.woken += 1

    def voices(self) -> Sequence[Voice]:
        return self.known

    def submit(self, request: SynthesisRequest, voice: Voice, language: str) -> FakeStream:
        self.submitted.append((request, voice, language))
        if len(self.streams) >= self.admits:
            raise Busy("recorded; this fake admits no more")
        self.streams.append(FakeStream(request, self.script, voice=voice))
        return self.streams[-1]

    async def start(self) -> float | None:
        return None

    async def stop(self) -> None: ...

    def observe(self, observer: EngineObserver) -> None: ...

    def health(self) -> bool:
        return True

    def stats(self) -> EngineStats:
        return EngineStats.idle("fake", max_queue=0, max_batch_queue=0)

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        raise NotImplementedError

    async def delete_voice(self, voice_id: str) -> None: ...


class FakeOutput:
    """An audio output whose playout the test drives: a real PlayoutQueue, pulled chunk by chunk by `play`."""

    def __init__(self, sample_rate: int = RATE) -> None:
        self.queue = PlayoutQueue(sample_rate)
        self.ended: list[str] = []
        self._listener: PlayoutListener = no_listener

    @property
    def sample_rate(self) -> int:
        return self.queue.sample_rate

    def report_to(self, listener: PlayoutListener) -> None:
        self._listener = listener

    async def write(self, utterance_id: str, pcm: Pcm, cues: Sequence[Cue] = ()) -> None:
        self.queue.push(utterance_id, pcm, cues)

    def end(self, utterance_id: str) -> None:
        self.ended.append(utterance_id)
        self.queue.end(utterance_id)

    def clear(self) -> tuple[str | None, int]:
        return self.queue.clear()

    def discard(self, utterance_id: str) -> None:
        self.queue.discard(utterance_id)

    def play(self, pieces: int | None = None) -> int:
        """Let `pieces` queued pieces (all, by default) leave, reporting their events; returns the samples played."""
        played = 0
        while pieces is None or pieces > 0:
            pcm, events = self.queue.next_chunk()
            if pcm is None and not events:
                break
            for event in events:
                self._listener(event)
            played += 0 if pcm is None else len(pcm)
            pieces = None if pieces is None else pieces - 1
        return played


class FakeObserver:
    """Counts what a session (and a call) reports."""

    def __init__(self) -> None:
        self.live: Counter[str] = Counter()
        self.ttfa: list[tuple[str, float]] = []
        self.chunk_gaps: list[tuple[str, float]] = []
        self.underruns: list[tuple[str, float]] = []

    @contextmanager
    def session(self, route: str) -> Iterator[None]:
        self.live[route] += 1
        try:
            yield
        finally:
            self.live[route] -= 1

    def observe_ttfa(self, route: str, seconds: float) -> None:
        self.ttfa.append((route, seconds))

    def observe_chunk_gap(self, route: str, seconds: float) -> None:
        self.chunk_gaps.append((route, seconds))

    def record_underrun(self, route: str, silence_s: float) -> None:
        self.underruns.append((route, silence_s))
