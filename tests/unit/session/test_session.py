"""The session against a fake engine and an output whose playout the test drives: speak, append, flush, cancel,
ids, limits, errors as events, and the order of events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from unittest.mock import ANY

import pytest

from media_server.engine.types import Priority
from media_server.errors import Busy, MediaServerError
from media_server.session.events import AudioStart, Cancelled, Done, Ended, Error, SessionEvent, Started, Word, Words
from media_server.session.session import MAX_EVENT_MESSAGE_CHARS, Session, SessionLimits
from tests.fakes import CHUNK, RATE, VOICE, FakeEngine, FakeObserver, FakeOutput, until

LIMITS = SessionLimits(
    max_text_chars=200, max_message_bytes=4096, messages_per_second=0, max_queued_utterances=8, first_segment_words=6
)
ROUTE = "test"
TWO_CHUNKS_MS = 2 * CHUNK * 1000 // RATE


@dataclass
class Harness:
    engine: FakeEngine
    output: FakeOutput
    session: Session
    observer: FakeObserver
    events: list[SessionEvent] = field(default_factory=list)
    messages: int = 0

    def send(self, **message: Any) -> None:
        self.session.handle(json.dumps(message))


@asynccontextmanager
async def running(
    engine: FakeEngine | None = None, limits: SessionLimits = LIMITS, output: FakeOutput | None = None
) -> AsyncIterator[Harness]:
    events: list[SessionEvent] = []
    engine = engine or FakeEngine()
    output = output or FakeOutput()
    observer = FakeObserver()
    harness: Harness

    def activity() -> None:
        harness.messages += 1

    session = Session(engine, output, events.append, limits, ROUTE, observer, on_activity=activity)
    harness = Harness(engine, output, session, observer, events)
    try:
        yield harness
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_speak_plays_an_utterance_and_its_events_follow_the_audio() -> None:
    async with running() as h:
        h.send(type="speak", text="Hello there.", id="u1")
        await until(lambda: "u1" in h.output.ended)
        assert h.events == [Started("u1", VOICE.id, "en")]
        [request] = h.engine.requests
        assert (request.text, request.voice, request.priority, request.speed) == (
            "Hello there.",
            VOICE.id,
            Priority.REALTIME,
            1.0,
        )
        h.output.play(1)
        assert h.events[1:] == [AudioStart("u1", ANY)]
        assert h.output.play() == CHUNK
        assert h.events[2:] == [Done("u1", TWO_CHUNKS_MS), Ended("u1")]
        assert [route for route, _ in h.observer.ttfa] == [ROUTE]
        assert len(h.observer.chunk_gaps) == 1


@pytest.mark.asyncio
async def test_utterances_play_one_after_another_with_unique_ids() -> None:
    async with running() as h:
        h.send(type="speak", text="One.")
        h.send(type="speak", text="Two.")
        await until(lambda: len(h.output.ended) == 2)
        first, second = h.output.ended
        assert first != second and first.startswith("utt-") and second.startswith("utt-")
        h.output.play()
    assert h.events == [
        Started(first, VOICE.id, "en"),
        Started(second, VOICE.id, "en"),
        AudioStart(first, ANY),
        Done(first, TWO_CHUNKS_MS),
        Ended(first),
        AudioStart(second, ANY),
        Done(second, TWO_CHUNKS_MS),
        Ended(second),
    ]


@pytest.mark.asyncio
async def test_an_id_is_refused_while_its_utterance_has_not_ended() -> None:
    async with running() as h:
        h.send(type="speak", text="First.", id="x")
        h.send(type="speak", text="Again.", id="x")
        refused = "id: 'x' is taken by an utterance of this session that has not ended"
        assert h.events == [Error("invalid_request", refused)]
        await until(lambda: "x" in h.output.ended)
        h.output.play()
        h.send(type="speak", text="Again.", id="x")
        await until(lambda: h.output.ended == ["x", "x"])
    assert [request.text for request in h.engine.requests] == ["First.", "Again."]


@pytest.mark.asyncio
async def test_append_speaks_each_clause_as_it_completes_and_flush_speaks_the_rest() -> None:
    async with running() as h:
        h.send(type="append", text="Hello there. How")
        await until(lambda: len(h.engine.requests) == 1)
        h.send(type="append", text=" are you")
        h.send(type="flush")
        await until(lambda: len(h.output.ended) == 1)
        h.output.play()
    assert [request.text for request in h.engine.requests] == ["Hello there.", "How are you"]
    [utterance] = h.output.ended
    assert h.events == [
        Started(utterance, VOICE.id, "en"),
        AudioStart(utterance, ANY),
        Done(utterance, 2 * TWO_CHUNKS_MS),
        Ended(utterance),
    ]


@pytest.mark.asyncio
async def test_an_appended_utterance_over_the_text_limit_is_refused() -> None:
    async with running(limits=replace(LIMITS, max_text_chars=30)) as h:
        h.send(type="append", text="a" * 20)
        h.send(type="append", text="b" * 20)
    assert h.events == [
        Error("text_too_long", "text: the appended utterance would be 40 characters, over the limit of 30")
    ]


@pytest.mark.asyncio
async def test_an_utterance_with_nothing_to_speak_ends_in_an_error() -> None:
    async with running() as h:
        h.send(type="append", text="... ?! ")
        h.send(type="flush")
        await until(lambda: len(h.output.ended) == 1)
        h.output.play()
    [utterance] = h.output.ended
    message = "text: the utterance had no letter or digit to speak"
    assert h.events == [Error("nothing_to_speak", message, id=utterance), Ended(utterance)]
    assert h.engine.requests == []


@pytest.mark.asyncio
async def test_a_refused_request_is_an_error_event_and_the_next_utterance_plays() -> None:
    engine = FakeEngine(refusals={"Refused.": Busy("the queue is full", retry_after_s=2.0, estimate_ms=1234.4)})
    async with running(engine) as h:
        h.send(type="speak", text="Refused.", id="r")
        h.send(type="speak", text="Fine.", id="f")
        await until(lambda: h.output.ended == ["r", "f"])
        h.output.play()
    assert h.events == [
        Error("busy", "the queue is full", id="r", retry_after_s=2.0, estimated_ttfa_ms=1234),
        Started("f", VOICE.id, "en"),
        Ended("r"),
        AudioStart("f", ANY),
        Done("f", TWO_CHUNKS_MS),
        Ended("f"),
    ]


@pytest.mark.asyncio
async def test_a_failed_utterance_is_discarded_and_what_came_before_it_still_plays() -> None:
    engine = FakeEngine(scripts={"Fails.": [CHUNK, MediaServerError("the synthesis failed")]})
    async with running(engine) as h:
        for text, utterance in (("Before.", "b"), ("Fails.", "x"), ("After.", "a")):
            h.send(type="speak", text=text, id=utterance)
        await until(lambda: h.output.ended == ["b", "x", "a"])
        played = h.output.play()
    assert played == 4 * CHUNK  # none of the failed utterance's chunk
    assert h.events == [
        Started("b", VOICE.id, "en"),
        Started("x", VOICE.id, "en"),
        Error("internal_error", "the synthesis failed", id="x"),
        Started("a", VOICE.id, "en"),
        AudioStart("b", ANY),
        Done("b", TWO_CHUNKS_MS),
        Ended("b"),
        Ended("x"),
        AudioStart("a", ANY),
        Done("a", TWO_CHUNKS_MS),
        Ended("a"),
    ]


@pytest.mark.asyncio
async def test_cancel_cuts_the_playing_utterance_drops_the_queued_ones_and_speaking_goes_on() -> None:
    later = asyncio.Event()
    engine = FakeEngine(scripts={"Long.": [CHUNK, later, CHUNK]})
    async with running(engine) as h:
        h.send(type="speak", text="Long.", id="l")
        h.send(type="speak", text="Next.", id="n")
        await until(lambda: h.output.queue.buffered_samples == CHUNK)
        h.output.play()
        h.send(type="cancel")
        assert h.events == [
            Started("l", VOICE.id, "en"),
            AudioStart("l", ANY),
            Cancelled("l", CHUNK * 1000 // RATE),
            Cancelled("n", 0),
        ]
        await until(lambda: h.engine.streams[0].closed)
        assert len(h.output.queue) == 0
        h.send(type="speak", text="Next.", id="n")
        await until(lambda: h.output.ended == ["n"])
        h.output.play()
    assert h.events[-2:] == [Done("n", TWO_CHUNKS_MS), Ended("n")]
    assert [request.text for request in h.engine.requests] == ["Long.", "Next."]


@pytest.mark.asyncio
async def test_cancel_with_nothing_in_progress_says_so() -> None:
    async with running() as h:
        h.send(type="cancel")
    assert h.events == [Cancelled(None, 0)]


@pytest.mark.asyncio
async def test_bad_messages_are_error_events_and_change_nothing() -> None:
    async with running() as h:
        h.session.handle("{nope")
        h.send(type="shout")
        h.session.handle("[1, 2]")
        h.send(type="speak", text="Fine.", id="f")
        await until(lambda: h.output.ended == ["f"])
    codes = [event.code for event in h.events if isinstance(event, Error)]
    assert codes == ["invalid_request"] * 3
    assert "type: unknown message type 'shout'" in str(h.events[1])
    assert h.events[3:] == [Started("f", VOICE.id, "en")]


@pytest.mark.asyncio
async def test_an_error_quoting_a_long_value_is_cut() -> None:
    async with running() as h:
        h.send(type="speak", text="Hi.", voice="v" * 1000)
    [error] = h.events
    assert isinstance(error, Error) and error.code == "unknown_voice"
    assert len(error.message) == MAX_EVENT_MESSAGE_CHARS and error.message.endswith("…")


@pytest.mark.asyncio
async def test_messages_over_the_rate_are_dropped_and_the_first_drop_is_reported() -> None:
    async with running(limits=replace(LIMITS, messages_per_second=2)) as h:
        for _ in range(4):
            h.send(type="cancel")
    assert h.messages == 4
    assert h.events[:2] == [Cancelled(None, 0), Cancelled(None, 0)]
    [error] = h.events[2:]
    assert isinstance(error, Error) and error.code == "rate_limited" and error.retry_after_s is not None


@pytest.mark.asyncio
async def test_a_session_holds_a_bounded_number_of_utterances() -> None:
    async with running(limits=replace(LIMITS, max_queued_utterances=2)) as h:
        for utterance in ("a", "b", "c"):
            h.send(type="speak", text="Words.", id=utterance)
    assert Error("busy", "this session already has 2 utterances queued", retry_after_s=1.0) in h.events


@pytest.mark.asyncio
async def test_after_queued_runs_once_every_admitted_utterance_has_ended() -> None:
    async with running() as h:
        ran: list[int] = []
        h.session.after_queued(lambda: ran.append(len(h.events)))
        assert ran == [0]
        h.send(type="speak", text="One.", id="a")
        h.send(type="speak", text="Two.", id="b")
        h.session.after_queued(lambda: ran.append(len(h.events)))
        h.send(type="speak", text="Three.", id="c")
        await until(lambda: h.output.ended == ["a", "b", "c"])
        h.output.play(4)  # a's two chunks and its end, b's first chunk
        assert ran == [0]
        h.output.play(2)  # b's second chunk and its end
        assert h.events[-1] == Ended("b") and ran == [0, len(h.events)]
        h.session.after_queued(lambda: ran.append(-1))
        h.send(type="cancel")
        assert ran[-1] == -1


@pytest.mark.asyncio
async def test_wait_idle_returns_once_everything_admitted_has_played() -> None:
    async with running() as h:
        await h.session.wait_idle()
        h.send(type="speak", text="One.", id="a")
        idle = asyncio.create_task(h.session.wait_idle())
        await until(lambda: h.output.ended == ["a"])
        assert not idle.done()
        h.output.play()
        await idle


@pytest.mark.asyncio
async def test_audio_is_resampled_to_the_output_rate() -> None:
    async with running(output=FakeOutput(sample_rate=2 * RATE)) as h:
        h.send(type="speak", text="Twice the rate.", id="r")
        await until(lambda: h.output.ended == ["r"])
        played = h.output.play()
    assert played == pytest.approx(4 * CHUNK, abs=64)
    done = h.events[-2]
    assert isinstance(done, Done) and done.audio_ms == pytest.approx(TWO_CHUNKS_MS, abs=2)


@pytest.mark.asyncio
async def test_close_cancels_every_task_the_session_started_and_stops_counting_it() -> None:
    gate = asyncio.Event()
    engine = FakeEngine(scripts={"Waits.": [CHUNK, gate]})
    async with running(engine) as h:
        assert h.observer.live[ROUTE] == 1
        h.send(type="speak", text="Waits.", id="w")
        await until(lambda: len(h.engine.streams) == 1)
        h.send(type="cancel")  # retires the player, which is still waiting on the engine
        h.send(type="speak", text="Waits.", id="w2")
        await until(lambda: len(h.engine.streams) == 2)
    assert h.observer.live[ROUTE] == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert all(stream.closed for stream in h.engine.streams)


@pytest.mark.asyncio
async def test_the_first_segment_decides_an_utterances_language_and_the_session_remembers_it() -> None:
    async with running() as h:
        h.send(type="append", text="Bonjour! This is the rest of the reply, which goes on. ")
        h.send(type="flush")
        await until(lambda: len(h.engine.requests) == 2)
        first, second = h.engine.requests
        assert (first.text, first.language, first.fallback_language) == ("Bonjour!", "auto", None)
        # Spoken in what the first segment was spoken in ("en", the fake's), not decided again.
        assert (second.language, second.fallback_language) == ("en", "en")
        h.output.play()
        h.send(type="speak", text="Gracias", id="u2")
        await until(lambda: len(h.engine.requests) == 3)
        # A new utterance is decided afresh, expecting what the session has been speaking.
        assert (h.engine.requests[2].language, h.engine.requests[2].fallback_language) == ("auto", "en")


def said(events: list[SessionEvent]) -> list[Word]:
    return [word for event in events if isinstance(event, Words) for word in event.words]


@pytest.mark.asyncio
async def test_words_come_as_their_chunk_plays_in_the_utterances_time_across_its_segments() -> None:
    async with running(FakeEngine({"How are you": (CHUNK,) * 3}, timed=True)) as h:
        h.send(type="append", text="Hello there. How")
        h.send(type="append", text=" are you")
        h.send(type="flush")
        await until(lambda: len(h.output.ended) == 1)
        assert said(h.events) == []  # written, not played
        h.output.play(1)
        assert [word.word for word in said(h.events)] == ["Hello"]
        h.output.play()
    chunk_ms = CHUNK * 1000 // RATE
    assert said(h.events) == [
        Word(text, n * chunk_ms, (n + 1) * chunk_ms) for n, text in enumerate("Hello there. How are you".split())
    ]


@pytest.mark.asyncio
async def test_a_cancel_says_which_words_had_played_whole() -> None:
    async with running(FakeEngine({"One two three four.": (CHUNK,) * 4}, timed=True)) as h:
        h.send(type="speak", text="One two three four.", id="u1")
        await until(lambda: "u1" in h.output.ended)
        h.output.play(2)
        h.send(type="cancel")
    assert h.events[-1] == Cancelled("u1", 2 * CHUNK * 1000 // RATE, "One two")
