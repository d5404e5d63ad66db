"""The intelligibility measurement: its word error count, and one sentence heard end to end (real server,
raw Piper, Whisper tiny from the `asr` extra)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loadtest.intelligibility import ASR_RATE, Sentence, at_asr_rate, heard, run_intelligibility, word_errors


@pytest.mark.parametrize(
    ("reference", "hypothesis", "errors"),
    [
        ("a b c", "a b c", 0),
        ("a b c", "a x c", 1),
        ("a b c", "a c", 1),
        ("a b c", "a b c d e", 2),
        ("", "a", 1),
        ("a b", "", 2),
        ("the cat sat", "sat the cat", 2),
    ],
)
def test_word_errors_are_edits_word_by_word(reference: str, hypothesis: str, errors: int) -> None:
    assert word_errors(reference, hypothesis) == errors


def test_readings_expand_every_choice_and_each_side_is_scored_against_its_closest() -> None:
    sentence = Sentence("It is 2 mph.", "It is [two|2] [miles per hour|mph].")
    assert sentence.readings() == [
        "It is two miles per hour.",
        "It is two mph.",
        "It is 2 miles per hour.",
        "It is 2 mph.",
    ]
    scored = heard(sentence, "It is 2 mph.", "It is two M P H.", lambda text: text.lower().rstrip("."))
    assert (scored.reference, scored.words) == ("it is two miles per hour", 6)
    assert (scored.ours_errors, scored.raw_errors) == (0, 3)
    assert (scored.ours_written_errors, scored.raw_written_errors) == (0, 4)


def test_audio_reaches_the_listener_at_its_rate_in_full_scale_floats() -> None:
    audio = at_asr_rate(np.full(22050, 16384, dtype=np.int16), 22050)
    assert audio.dtype == np.float32 and abs(len(audio) - ASR_RATE) <= 32
    assert 0.49 < float(np.median(audio)) < 0.51


def test_a_plain_sentence_is_heard_without_error_on_both_sides(server_url: str) -> None:
    pytest.importorskip("faster_whisper")
    sentence = "Our team grew from 12 to 45 people between 2019 and 2023."
    result = asyncio.run(run_intelligibility(server_url, (Sentence(sentence, sentence),)))
    [scored] = result.sentences
    assert scored.reference == "our team grew from 12 to 45 people between 2019 and 2023"
    assert (scored.ours_errors, scored.raw_errors, result.ours_wer) == (0, 0, 0.0)
