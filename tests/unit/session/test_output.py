"""The one playout queue: frames and chunks, start/end events, marks, underruns and click-free cuts."""

from __future__ import annotations

import numpy as np

from media_server.audio.constants import FRAME_SAMPLES
from media_server.audio.pcm import Pcm
from media_server.session.events import Word
from media_server.session.output import (
    PlayoutEnd,
    PlayoutEvent,
    PlayoutMark,
    PlayoutQueue,
    PlayoutStart,
    PlayoutWords,
)


def tone(samples: int, amplitude: int = 10000) -> Pcm:
    return np.full(samples, amplitude, dtype=np.int16)


def test_utterances_play_back_to_back_with_events() -> None:
    queue = PlayoutQueue()
    queue.push("a", tone(FRAME_SAMPLES + 100))
    queue.end("a")
    queue.push("b", tone(FRAME_SAMPLES - 100))
    queue.end("b")
    frame, events = queue.next_frame()
    assert events == [PlayoutStart("a")]
    assert np.all(frame == 10000)
    frame, events = queue.next_frame()
    assert events == [PlayoutEnd("a", FRAME_SAMPLES + 100), PlayoutStart("b")]
    assert np.all(frame == 10000)
    frame, events = queue.next_frame()
    assert events == [PlayoutEnd("b", FRAME_SAMPLES - 100)]
    assert not np.any(frame)
    assert queue.underrun_frames == 0 and queue.idle


def test_silence_when_idle_is_not_an_underrun() -> None:
    queue = PlayoutQueue()
    frame, events = queue.next_frame()
    assert not np.any(frame) and events == []
    assert queue.underrun_frames == 0


def test_missing_audio_inside_an_utterance_is_an_underrun() -> None:
    queue = PlayoutQueue()
    queue.push("a", tone(FRAME_SAMPLES // 2))
    queue.next_frame()
    queue.next_frame()
    assert queue.underrun_frames == 2


def test_clear_reports_what_was_played_and_fades_out() -> None:
    queue = PlayoutQueue()
    fade = queue.fade_samples
    queue.push("a", tone(FRAME_SAMPLES * 10))
    queue.next_frame()
    queue.next_frame()
    assert queue.clear() == ("a", 2 * FRAME_SAMPLES)
    frame, events = queue.next_frame()
    assert events == []
    assert frame[0] == 10000
    assert np.all(np.diff(frame[:fade].astype(np.int32)) <= 0)
    assert not np.any(frame[fade:])
    assert not np.any(queue.next_frame()[0])
    assert queue.buffered_samples == 0 and queue.idle


def test_discard_drops_one_utterance_and_fades_it_out_where_it_is() -> None:
    queue = PlayoutQueue()
    queue.push("a", tone(FRAME_SAMPLES * 10))
    queue.next_frame()
    queue.discard("a")
    queue.end("a")
    assert queue.buffered_samples == 0
    frame, events = queue.next_frame()
    assert events == [] and frame[0] == 10000 and not np.any(frame[queue.fade_samples :])
    _, events = queue.next_frame()
    assert events == [PlayoutEnd("a", FRAME_SAMPLES)]
    assert queue.idle and queue.underrun_frames == 0


def test_discard_keeps_the_utterance_still_playing_before_it() -> None:
    queue = PlayoutQueue()
    queue.push("a", tone(FRAME_SAMPLES * 2))
    queue.end("a")
    queue.push("b", tone(FRAME_SAMPLES * 5, amplitude=20000))
    queue.discard("b")
    queue.end("b")
    assert queue.buffered_samples == FRAME_SAMPLES * 2
    frames = [queue.next_frame() for _ in range(3)]
    assert all(np.all(frame == 10000) for frame, _ in frames[:2])
    assert [e for _, events in frames for e in events] == [
        PlayoutStart("a"),
        PlayoutEnd("a", FRAME_SAMPLES * 2),
        PlayoutEnd("b", 0),
    ]


def test_frames_at_another_rate_are_20_ms() -> None:
    queue = PlayoutQueue(sample_rate=8000)
    queue.push("a", tone(200))
    frame, _ = queue.next_frame()
    assert queue.frame_samples == len(frame) == 160 and queue.fade_samples == 40


def drain_chunks(queue: PlayoutQueue) -> list[tuple[int | None, list[PlayoutEvent]]]:
    """Every piece `next_chunk` gives until the queue is empty: (samples or None, events)."""
    pieces: list[tuple[int | None, list[PlayoutEvent]]] = []
    while True:
        pcm, events = queue.next_chunk()
        if pcm is None and not events:
            return pieces
        pieces.append((None if pcm is None else len(pcm), events))


def test_chunks_come_whole_in_the_order_written_with_marks_in_place() -> None:
    queue = PlayoutQueue(sample_rate=24000)
    queue.push("a", tone(300))
    queue.push("a", np.zeros(0, dtype=np.int16))  # nothing to play: not queued
    queue.push("a", tone(500))
    queue.end("a")
    queue.mark("after-a")
    queue.push("b", tone(700))
    queue.end("b")
    assert len(queue) == 6 and queue.buffered_samples == 1500
    assert drain_chunks(queue) == [
        (300, [PlayoutStart("a")]),
        (500, []),
        (None, [PlayoutEnd("a", 800)]),
        (None, [PlayoutMark("after-a")]),
        (700, [PlayoutStart("b")]),
        (None, [PlayoutEnd("b", 700)]),
    ]
    assert queue.buffered_samples == 0 and len(queue) == 0


def test_a_chunk_cut_by_clear_stops_without_a_fade_and_marks_survive() -> None:
    queue = PlayoutQueue(sample_rate=24000)
    queue.push("a", tone(300))
    queue.push("a", tone(500))
    queue.mark("echo")
    queue.end("a")
    assert queue.next_chunk()[1] == [PlayoutStart("a")]
    assert queue.clear() == ("a", 300)
    assert drain_chunks(queue) == [(None, [PlayoutMark("echo")])]
    assert queue.idle


def test_marks_come_back_from_frames_too() -> None:
    queue = PlayoutQueue()
    queue.push("a", tone(FRAME_SAMPLES // 2))
    queue.mark("half")
    queue.push("a", tone(FRAME_SAMPLES // 2))
    _, events = queue.next_frame()
    assert events == [PlayoutStart("a"), PlayoutMark("half")]


def test_words_are_reported_in_the_frame_that_carries_their_first_sample() -> None:
    queue = PlayoutQueue()
    hello, there = Word("Hello", 0, 300), Word("there", 310, 600)
    queue.push("a", tone(3 * FRAME_SAMPLES), [(0, hello), (FRAME_SAMPLES + 5, there)])
    queue.push("a", tone(0), [(0, Word("again", 700, 800))])
    queue.end("a")
    reported = [[e for e in queue.next_frame()[1] if isinstance(e, PlayoutWords)] for _ in range(4)]
    assert reported == [
        [PlayoutWords("a", (hello,))],
        [PlayoutWords("a", (there,))],
        [],
        [PlayoutWords("a", (Word("again", 700, 800),))],
    ]


def test_pulled_in_chunks_words_come_with_the_chunk_and_a_cut_drops_the_rest() -> None:
    queue = PlayoutQueue()
    queue.push("a", tone(100), [(50, Word("one", 10, 20)), (0, Word("zero", 0, 5))])
    queue.push("a", tone(100), [(10, Word("two", 30, 40))])
    pcm, events = queue.next_chunk()
    assert pcm is not None and events == [
        PlayoutStart("a"),
        PlayoutWords("a", (Word("zero", 0, 5), Word("one", 10, 20))),
    ]
    queue.clear()
    assert queue.next_chunk() == (None, [])
