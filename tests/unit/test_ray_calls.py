"""What crosses between a Ray gateway and an engine replica (`media_server.gateway.ray.calls`)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from media_server.engine.types import Priority, RequestTimings, SamplingParams, SynthesisRequest, WordTiming
from media_server.errors import Busy
from media_server.gateway.ray.calls import Audio, Call, Failure, Start, item_from_wire, item_to_wire, segments_of


def test_segments_are_the_sentences_and_nothing_is_lost() -> None:
    text = "Hello there, friend.  It costs $5 today, or so! Does it? Yes"
    segments = segments_of(text)
    assert segments == ["Hello there,", "friend.", "It costs $5 today, or so!", "Does it?", "Yes"]
    assert " ".join(segments) == " ".join(text.split())


def test_a_long_sentence_is_cut_at_a_word() -> None:
    text = " ".join(["word"] * 200) + "."
    segments = segments_of(text)
    assert len(segments) > 1 and all(len(segment) <= 250 for segment in segments)
    assert " ".join(segments) == text


def test_a_call_carries_times_as_durations_between_clocks() -> None:
    request = SynthesisRequest(
        text="A. B.",
        voice="v",
        language="en",
        priority=Priority.REALTIME,
        sampling=SamplingParams(temperature=0.5, seed=3),
        received_at=100.0,
        deadline=100.8,
    )
    call = Call(request, ("A. ", "B."), first_segment=1, skip_samples=480)
    # Sent at 100.5 on the gateway's clock, received at 7000.0 on the replica's.
    received = Call.from_wire(call.to_wire(now=100.5), now=7000.0)
    assert received.request.received_at == pytest.approx(6999.5)
    assert received.request.deadline == pytest.approx(7000.3)
    assert received.request.sampling == request.sampling and received.request.priority == Priority.REALTIME
    assert (received.segments, received.first_segment, received.skip_samples) == (("A. ", "B."), 1, 480)


def test_items_cross_as_themselves() -> None:
    pcm = np.arange(-5, 5, dtype=np.int16)
    words = (WordTiming("Hello", 0.01, 0.3), WordTiming("there", 0.3, 0.62, estimated=True))
    before = time.time()
    audio = item_from_wire(item_to_wire(Audio(segment=2, pcm=pcm, words=words)))
    assert isinstance(audio, Audio) and audio.segment == 2 and np.array_equal(audio.pcm, pcm)
    assert audio.words == words
    assert audio.sent_at is not None and before <= audio.sent_at <= time.time()
    start = item_from_wire(item_to_wire(Start("r1", True, RequestTimings(0.1, 0.2, 0.3))))
    assert start == Start("r1", True, RequestTimings(0.1, 0.2, 0.3))
    failure = item_from_wire(item_to_wire(Failure(Busy("full", retry_after_s=2.0))))
    assert isinstance(failure, Failure) and isinstance(failure.error, Busy)
    assert failure.error.retry_after_s == 2.0
