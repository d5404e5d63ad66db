"""The playout buffer: frames, start/end events, underruns and click-free cuts."""

from __future__ import annotations

import numpy as np

from media_server.audio.constants import FRAME_SAMPLES
from media_server.audio.playout import FADE_SAMPLES, PlayoutBuffer


def tone(samples: int, amplitude: int = 10000) -> np.ndarray:
    return np.full(samples, amplitude, dtype=np.int16)


def test_utterances_play_back_to_back_with_events() -> None:
    buffer = PlayoutBuffer()
    buffer.push("a", tone(FRAME_SAMPLES + 100))
    buffer.end("a")
    buffer.push("b", tone(FRAME_SAMPLES - 100))
    buffer.end("b")
    frame, events = buffer.next_frame()
    assert [(e.kind, e.utterance_id) for e in events] == [("start", "a")]
    assert np.all(frame == 10000)
    frame, events = buffer.next_frame()
    assert [(e.kind, e.utterance_id, e.played_samples) for e in events] == [
        ("end", "a", FRAME_SAMPLES + 100),
        ("start", "b", 0),
    ]
    assert np.all(frame == 10000)
    frame, events = buffer.next_frame()
    assert [(e.kind, e.played_samples) for e in events] == [("end", FRAME_SAMPLES - 100)]
    assert not np.any(frame)
    assert buffer.underrun_frames == 0


def test_silence_when_idle_is_not_an_underrun() -> None:
    buffer = PlayoutBuffer()
    frame, events = buffer.next_frame()
    assert not np.any(frame) and events == []
    assert buffer.underrun_frames == 0


def test_missing_audio_inside_an_utterance_is_an_underrun() -> None:
    buffer = PlayoutBuffer()
    buffer.push("a", tone(FRAME_SAMPLES // 2))
    buffer.next_frame()
    buffer.next_frame()
    assert buffer.underrun_frames == 2


def test_clear_reports_what_was_played_and_fades_out() -> None:
    buffer = PlayoutBuffer()
    buffer.push("a", tone(FRAME_SAMPLES * 10))
    buffer.next_frame()
    buffer.next_frame()
    assert buffer.clear() == ("a", 2 * FRAME_SAMPLES)
    frame, events = buffer.next_frame()
    assert events == []
    assert frame[0] == 10000
    assert np.all(np.diff(frame[:FADE_SAMPLES].astype(np.int32)) <= 0)
    assert not np.any(frame[FADE_SAMPLES:])
    assert not np.any(buffer.next_frame()[0])
    assert buffer.buffered_samples == 0


def test_discard_drops_one_utterance_and_fades_it_out_where_it_is() -> None:
    buffer = PlayoutBuffer()
    buffer.push("a", tone(FRAME_SAMPLES * 10))
    buffer.next_frame()
    buffer.discard("a")
    buffer.end("a")
    assert buffer.buffered_samples == 0
    frame, events = buffer.next_frame()
    assert events == [] and frame[0] == 10000 and not np.any(frame[FADE_SAMPLES:])
    _, events = buffer.next_frame()
    assert [(e.kind, e.utterance_id, e.played_samples) for e in events] == [("end", "a", FRAME_SAMPLES)]
    assert buffer.idle and buffer.underrun_frames == 0


def test_discard_keeps_the_utterance_still_playing_before_it() -> None:
    buffer = PlayoutBuffer()
    buffer.push("a", tone(FRAME_SAMPLES * 2))
    buffer.end("a")
    buffer.push("b", tone(FRAME_SAMPLES * 5, amplitude=20000))
    buffer.discard("b")
    buffer.end("b")
    assert buffer.buffered_samples == FRAME_SAMPLES * 2
    frames = [buffer.next_frame() for _ in range(3)]
    assert all(np.all(frame == 10000) for frame, _ in frames[:2])
    assert [(e.kind, e.utterance_id) for _, events in frames for e in events] == [
        ("start", "a"),
        ("end", "a"),
        ("end", "b"),
    ]
