"""The incremental segmenter releases complete clauses and sentences, and nothing early."""

from __future__ import annotations

import pytest

from media_server.text.segmenter import Segmenter, SegmenterPolicy, split_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there.", ["Hello there."]),
        ("Hello there, how are you? Fine.", ["Hello there,", "how are you?", "Fine."]),
        ("Dr. Smith paid 3.50 dollars. Then he left.", ["Dr. Smith paid 3.50 dollars.", "Then he left."]),
        (
            "One two three four five six seven eight nine.",
            ["One two three four five six", "seven eight nine."],
        ),
        ("  spaced    out   text  ", ["spaced out text"]),
        ("...", []),
        ("Wait! Really?! Yes.", ["Wait!", "Really?!", "Yes."]),
        ("e.g. this one. And that.", ["e.g. this one.", "And that."]),
    ],
)
def test_split_text(text: str, expected: list[str]) -> None:
    assert split_text(text) == expected


def test_later_clauses_wait_for_a_sentence_unless_long() -> None:
    text = "Hi, a short clause, then the sentence goes on. And a very long clause that keeps going on, and on."
    assert split_text(text) == [
        "Hi,",
        "a short clause, then the sentence goes on.",
        "And a very long clause that keeps going on,",
        "and on.",
    ]


def test_fragments_release_segments_only_when_complete() -> None:
    segmenter = Segmenter()
    released: list[list[str]] = []
    for token in ["Hel", "lo", " there", ",", " how", " are you", "?", " I am", " fine."]:
        released.append(segmenter.append(token))
    assert released == [[], [], [], [], ["Hello there,"], [], [], ["how are you?"], []]
    assert segmenter.flush() == ["I am fine."]
    assert segmenter.pending == ""


def test_a_period_is_not_a_sentence_end_until_whitespace_follows() -> None:
    segmenter = Segmenter()
    assert segmenter.append("It costs 3.") == []
    assert segmenter.append("5 euros. ") == ["It costs 3.5 euros."]


def test_unpunctuated_text_is_cut_at_a_word_boundary() -> None:
    policy = SegmenterPolicy(first_segment_words=100, max_chars=30)
    segments = split_text("word " * 20, policy)
    assert all(len(s) <= 35 for s in segments)
    assert " ".join(segments) == " ".join(["word"] * 20)


def test_flush_starts_a_new_utterance_with_a_short_first_segment() -> None:
    segmenter = Segmenter()
    segmenter.append("First utterance here. ")
    segmenter.flush()
    assert segmenter.append("Again, a new one. ") == ["Again,", "a new one."]


def test_text_without_whitespace_is_still_cut_into_bounded_segments() -> None:
    policy = SegmenterPolicy(max_chars=240)
    segments = split_text("word," * 1000, policy)
    assert max(len(segment) for segment in segments) <= 241
    assert "".join(segments) == "word," * 1000
    unbroken = split_text("a" * 1000, policy)
    assert max(len(segment) for segment in unbroken) <= 480
    assert "".join(unbroken) == "a" * 1000
