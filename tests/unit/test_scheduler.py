"""The scheduler's policy against a fake backend with scripted output: no threads, no sleeps.

Each test drives the scheduler step by step (`run_pending` on the test's own
thread) and checks which job the backend was asked to step, so a change of
policy fails here exactly, not as a timing assert in an end-to-end test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from media_server.engine.cache import AudioCache
from media_server.engine.pipeline import RequestPipeline
from media_server.engine.run_queue import REFILL_MARGIN_S
from media_server.engine.scheduler import Scheduler, StepResult
from media_server.engine.types import Pcm, Priority, Speech, SynthesisRequest, Voice, WordTiming
from media_server.engine.words import WordSpan
from media_server.errors import Busy

RATE = 1000
VOICE = Voice(id="fake", name="fake", backend="fake", languages=("en",), sample_rate=RATE)


def audio(seconds: float) -> Pcm:
    return np.full(round(seconds * RATE), 1000, dtype=np.int16)


@dataclass(eq=False)
class FakeSequence:
    name: str
    script: list[Pcm]
    closed: bool = False


@dataclass
class FakeBackend:
    """Each request's text names a script; `step` plays it one item per step and records who stepped."""

    scripts: dict[str, list[Pcm]]
    max_sequences: int | None = None
    name: str = "fake"
    max_batch: int = 1
    native_speed: bool = True
    deterministic: bool = True
    stepped: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def voices(self) -> Sequence[Voice]:
        return (VOICE,)

    def open(self, request: SynthesisRequest, voice: Voice) -> FakeSequence:
        return FakeSequence(request.text, list(self.scripts[request.text]))

    def step(self, sequences: list[FakeSequence]) -> list[Pcm | None]:
        self.stepped.extend(sequence.name for sequence in sequences)
        return [sequence.script.pop(0) if sequence.script else None for sequence in sequences]

    def words(self, sequence: FakeSequence) -> list[WordSpan]:
        """The last step said the text's next word (each step's audio one word, as far as the text has words)."""
        script = self.scripts[sequence.name]
        index = len(script) - len(sequence.script) - 1
        words = list(re.finditer(r"\S+", sequence.name))
        if index >= len(words):
            return []
        start = sum(len(pcm) for pcm in script[:index])
        return [WordSpan(words[index].start(), words[index].end(), start, start + len(script[index]))]

    def lead_s(self, sequence: FakeSequence) -> float:
        return 0.0

    def close(self, sequence: FakeSequence) -> None:
        self.closed.append(sequence.name)


class Unfinished:
    """Leaves each step's audio as it is: the audio finishing (trim, gain) is not under test here."""

    def __init__(self) -> None:
        self.emitted_until = 0

    @property
    def received_until(self) -> int:
        return self.emitted_until

    @property
    def sent_samples(self) -> int:
        return self.emitted_until

    def process(self, pcm: Pcm) -> Pcm:
        self.emitted_until += len(pcm)
        return pcm

    def output_position(self, sample: int) -> float:
        return float(sample)


@dataclass
class Harness:
    backend: FakeBackend
    scheduler: Scheduler
    cache: AudioCache
    received: dict[str, list[StepResult]] = field(default_factory=dict)

    def submit(self, text: str, priority: Priority = Priority.REALTIME, deadline: float | None = None) -> str:
        request = SynthesisRequest(text=text, priority=priority, deadline=deadline)
        pipeline = RequestPipeline(request, VOICE, "en", 1.0, self.cache, native_speed=True, finish=Unfinished())
        results = self.received.setdefault(text, [])
        self.scheduler.submit(pipeline, results.append)
        return request.id

    def run(self, steps: int) -> list[str]:
        before = len(self.backend.stepped)
        for _ in range(steps):
            self.scheduler.run_pending()
        return self.backend.stepped[before:]


def harness(
    scripts: dict[str, list[Pcm]],
    max_outstanding: int = 8,
    max_sequences: int | None = None,
    max_batch_queue: int = 8,
) -> Harness:
    fake = FakeBackend(scripts, max_sequences=max_sequences)
    scheduler = Scheduler(
        fake, workers=1, max_queue=8, max_outstanding=max_outstanding, max_batch_queue=max_batch_queue
    )
    return Harness(fake, scheduler, AudioCache(10**6, deterministic_backends={"fake"}))


def test_a_new_utterance_steps_before_a_playing_one_with_audio_buffered() -> None:
    h = harness({"playing": [audio(2.0), audio(2.0)], "new": [audio(0.5)]})
    h.submit("playing")
    assert h.run(1) == ["playing"]
    h.submit("new")
    assert h.run(1) == ["new"]


def test_a_playing_job_about_to_run_dry_steps_before_a_new_one() -> None:
    h = harness({"playing": [audio(REFILL_MARGIN_S / 2), audio(1.0)], "new": [audio(0.5)]})
    h.submit("playing")
    h.run(1)
    h.submit("new")
    assert h.run(2) == ["playing", "new"]


def test_among_new_utterances_the_oldest_goes_first() -> None:
    h = harness({name: [audio(1.0)] for name in ("a", "b", "c")})
    for name in ("b", "a", "c"):
        h.submit(name)
    assert h.run(3) == ["b", "a", "c"]


def test_a_continuation_waits_until_its_listener_needs_it() -> None:
    h = harness({"later": [audio(1.0)], "now": [audio(1.0)]})
    h.submit("later", deadline=time.monotonic() + 5.0)
    h.submit("now")
    assert h.run(3) == ["now", "now", "later"]  # "now" finishes (its 1 s is due sooner) before "later" starts


def test_real_time_work_goes_before_batch_work() -> None:
    h = harness({"batch": [audio(1.0)] * 3, "live": [audio(1.0)]})
    h.submit("batch", priority=Priority.BATCH)
    h.run(1)
    h.submit("live")
    assert h.run(3) == ["live", "live", "batch"]


def test_a_reader_that_falls_behind_is_parked_until_it_reads() -> None:
    h = harness({"slow": [audio(0.1)] * 5}, max_outstanding=2)
    request_id = h.submit("slow")
    assert h.run(4) == ["slow", "slow"]  # two chunks unread: parked, no model time
    assert h.scheduler.parked == 1
    h.scheduler.consumed(request_id)
    assert h.run(2) == ["slow"]


def test_a_cancelled_job_frees_its_slot_at_the_next_step_boundary() -> None:
    h = harness({"first": [audio(1.0)] * 3, "second": [audio(1.0)]}, max_sequences=1)
    first = h.submit("first")
    h.run(1)
    h.submit("second")
    h.scheduler.abort(first)
    assert h.run(1) == []  # the boundary: the cancelled sequence is closed
    assert h.backend.closed == ["first"]
    assert h.run(1) == ["second"]


def test_a_cache_hit_is_answered_at_once_without_a_step() -> None:
    h = harness({"phrase": [audio(0.3), audio(0.2)]})
    h.submit("phrase")
    h.run(3)
    first = list(h.received.pop("phrase"))
    h.submit("phrase")
    assert h.run(1) == []
    again = h.received["phrase"]
    assert len(again) == len(first) == 3 and again[-1] is None
    assert all(
        isinstance(a, Speech) and isinstance(b, Speech) and np.array_equal(a.pcm, b.pcm)
        for a, b in zip(again[:-1], first[:-1], strict=True)
    )


def test_each_word_comes_with_the_audio_that_starts_it_and_again_from_the_cache() -> None:
    h = harness({"one two six": [audio(0.3), audio(0.2), audio(0.4)]})
    h.submit("one two six")
    h.run(4)
    first = h.received.pop("one two six")
    expected = [
        (WordTiming("one", 0.0, 0.3),),
        (WordTiming("two", 0.3, 0.5),),
        (WordTiming("six", 0.5, 0.9),),
    ]
    assert [result.words for result in first if isinstance(result, Speech)] == expected
    h.submit("one two six")
    h.run(1)
    assert [result.words for result in h.received["one two six"] if isinstance(result, Speech)] == expected


def test_a_full_queue_refuses_at_once() -> None:
    h = harness({"x": [audio(1.0)]})
    for _ in range(8):
        h.submit("x")
    with pytest.raises(Busy, match="real-time"):
        h.submit("x")
    assert h.scheduler.counters.refused == 1


def test_a_flood_of_batch_work_never_takes_the_real_time_capacity() -> None:
    h = harness({"x": [audio(1.0)]}, max_batch_queue=2)
    for _ in range(2):
        h.submit("x", priority=Priority.BATCH)
    with pytest.raises(Busy, match="batch"):
        h.submit("x", priority=Priority.BATCH)
    for _ in range(8):
        h.submit("x")
    assert h.scheduler.pending == 10


def test_the_estimate_counts_the_new_utterances_waiting_ahead() -> None:
    h = harness({"a": [audio(1.0)] * 2, "b": [audio(1.0)]})
    h.submit("a")
    h.run(1)  # one step measured: the estimate has a step cost to go on
    alone = h.scheduler.estimate_first_audio_s()
    behind_one_more = h.scheduler.estimate_first_audio_s(ahead=1)  # what a router expects before sending "b"
    h.submit("b")
    assert h.scheduler.estimate_first_audio_s() == pytest.approx(behind_one_more)
    assert behind_one_more > alone


def test_audio_made_after_its_listener_ran_dry_counts_as_late() -> None:
    h = harness({"fresh": [audio(1.0), audio(1.0)], "overdue": [audio(0.5)], "file": [audio(0.5)]})
    h.submit("fresh")
    h.submit("overdue", deadline=time.monotonic() - 1.0)  # continues an utterance whose audio has run out
    h.submit("file", Priority.BATCH, deadline=time.monotonic() - 1.0)  # nobody listens to a batch request
    h.run(10)
    assert len(h.received["fresh"]) == 3 and len(h.received["overdue"]) == 2  # audio, audio, end; audio, end
    assert h.scheduler.counters.late == 1
