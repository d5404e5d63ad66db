"""Word timings: normalized words mapped back to the written ones, phonemes to words, placement in the audio sent."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest

from media_server.config import Settings
from media_server.engine.backends.base import speak_alone
from media_server.engine.backends.piper import PiperBackend
from media_server.engine.backends.piper.alignment import NO_WORD, WordPhonemes
from media_server.engine.postprocess import PostProcessor
from media_server.engine.types import SynthesisRequest
from media_server.engine.words import EstimatingAligner, WordSpan, WordTracker
from media_server.text.normalize import normalize_aligned
from media_server.text.segmenter import split_text_located
from media_server.text.spoken import spoken_text

RATE = 1000


class Straight:
    """Every backend sample sent as it is, `emitted_until` of them so far; `held` more received and held back."""

    def __init__(self, emitted_until: int, held: int = 0) -> None:
        self.emitted_until = emitted_until
        self.received_until = emitted_until + held
        self.sent_samples = emitted_until

    def output_position(self, sample: int) -> float:
        return float(sample)


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperBackend]:
    backend = PiperBackend(Settings())
    backend.load()
    yield backend
    backend.unload()


def spans_for(text: str, normalized: str, every: int = 100) -> list[WordSpan]:
    """A span per normalized word, each `every` samples long, back to back."""
    return [
        WordSpan(m.start(), m.end(), i * every, (i + 1) * every) for i, m in enumerate(re.finditer(r"\S+", normalized))
    ]


def test_readings_map_back_to_the_written_words_they_replaced() -> None:
    text = "  It costs $3.50 at 5:30 p.m., Dr. Smith said.\n"
    normalized = normalize_aligned(text)
    assert normalized.text == normalize_aligned(text).text
    origins = {
        m.group(): text[slice(*normalized.origin(m.start(), m.end()))] for m in re.finditer(r"\S+", normalized.text)
    }
    assert origins["dollars"] == origins["cents"] == "$3.50"
    assert origins["thirty"] == "5:30 p.m."
    assert origins["Doctor"] == "Dr."
    assert origins["said."] == "said."


def test_something_said_for_nothing_written_times_no_word() -> None:
    spoken = spoken_text('<speak><sub alias="hello"></sub></speak>', True, "en", False)
    assert (spoken.written.strip(), spoken.said.text.strip()) == ("", "hello")
    tracker = WordTracker(spoken.written, spoken.said, RATE)
    tracker.add(spans_for(spoken.written, spoken.said.text))
    assert tracker.release(Straight(10_000), final=True) == ()


def test_a_written_word_said_as_several_is_one_word_with_their_span() -> None:
    text = "It costs $3.50, 5 km away."
    normalized = normalize_aligned(text)
    tracker = WordTracker(text, normalized, RATE)
    tracker.add(spans_for(text, normalized.text))
    words = tracker.release(Straight(10_000), final=True)
    assert [w.word for w in words] == ["It", "costs", "$3.50,", "5 km", "away."]
    money = words[2]
    assert (money.start_s, money.end_s) == (0.2, 0.7)  # "three dollars and fifty cents": five spans


def test_a_word_is_released_only_once_its_start_was_sent_and_its_reading_is_complete() -> None:
    text = "Pay $3.50 now"
    normalized = normalize_aligned(text)
    spans = spans_for(text, normalized.text)
    tracker = WordTracker(text, normalized, RATE)
    tracker.add(spans[:3])  # "Pay three dollars": "$3.50" goes on
    assert [w.word for w in tracker.release(Straight(50))] == ["Pay"]
    assert tracker.release(Straight(1000)) == ()
    tracker.add(spans[3:])  # "and fifty cents now"
    assert [w.word for w in tracker.release(Straight(550))] == ["$3.50"]
    assert [w.word for w in tracker.release(Straight(601))] == ["now"]


def test_a_word_ending_in_held_silence_waits_for_it_and_ends_with_the_audio_when_it_is_dropped() -> None:
    text = "Forty two"
    normalized = normalize_aligned(text)
    tracker = WordTracker(text, normalized, RATE)
    tracker.add(spans_for(text, normalized.text))  # "Forty" 0-100, "two" 100-200
    assert [w.word for w in tracker.release(Straight(150, held=50))] == ["Forty"]  # "two" ends in held silence
    assert tracker.release(Straight(150, held=50)) == ()
    [two] = tracker.release(Straight(150, held=50), final=True)  # the silence is dropped: the audio ends at 150
    assert (two.word, two.start_s, two.end_s) == ("two", 0.1, 0.15)


def test_a_word_cut_by_a_chunk_boundary_is_released_with_its_start() -> None:
    text = "Forty two"
    normalized = normalize_aligned(text)
    tracker = WordTracker(text, normalized, RATE)
    tracker.add(spans_for(text, normalized.text))
    [forty, two] = tracker.release(Straight(150))  # speech up to the chunk's end: the rest of "two" follows
    assert (two.start_s, two.end_s) == (0.1, 0.2)


def test_words_follow_the_trim_of_leading_silence() -> None:
    post = PostProcessor(RATE * 16, gain=1.0)
    silence = np.zeros(8000, dtype=np.int16)
    tone = (8000 * np.sin(np.arange(16000) * 2 * np.pi * 200 / 16000)).astype(np.int16)
    sent = post.process(np.concatenate([silence, tone]))
    trimmed = 8000 + 16000 - len(sent)
    assert trimmed > 7000
    assert post.output_position(12000) == pytest.approx(12000 - trimmed)
    assert post.output_position(100) == 0.0


def test_phonemes_of_words_espeak_joined_are_given_to_each_word(piper: PiperBackend) -> None:
    voice = piper._voice
    assert voice is not None
    phonemes = WordPhonemes(voice.phonemize)
    words = "of the people, by the people".split()
    said = [p for sentence in voice.phonemize(" ".join(words)) for p in sentence]
    owners = phonemes.owners(words, said)
    runs = "".join(p if o == NO_WORD else str(o) for p, o in zip(said, owners, strict=True))
    assert "".join(said).split(" ")[0] == "ʌvðə"  # espeak says "of the" as one word
    assert runs.startswith("0011 ")  # ...which is still two: ʌv, ðə
    assert sorted(set(owners) - {NO_WORD}) == list(range(len(words)))
    spoken = [o for o in owners if o != NO_WORD]
    assert spoken == sorted(spoken)


def test_segments_know_where_their_words_are_in_the_text() -> None:
    text = "Hello there,  my friend.\n\nHow are   you doing today? Fine."
    for segment, starts in split_text_located(text):
        assert [text[s : s + len(w)] for s, w in zip(starts, segment.split(" "), strict=True)] == segment.split(" ")


def test_the_estimating_aligner_shares_the_audio_by_length_and_pauses_at_punctuation() -> None:
    spans = EstimatingAligner().align("Hi, wonderful world.", (10, 14, 24), np.zeros(2000, dtype=np.int16), 500)
    assert all(span.estimated for span in spans)
    assert [(s.start_char, s.end_char) for s in spans] == [(10, 13), (14, 23), (24, 30)]
    lengths = [s.end_sample - s.start_sample for s in spans]
    assert lengths[1] > lengths[2] > lengths[0]
    assert spans[0].start_sample == 500 and spans[1].start_sample > spans[0].end_sample
    assert spans[-1].end_sample <= 2500


def test_piper_times_every_word_in_order_within_its_audio(piper: PiperBackend) -> None:
    text = "The quick brown fox jumps over the lazy dog, of the people."
    sequence = piper.open(SynthesisRequest(text=text), piper.voices()[0])
    total = 0
    spans: list[WordSpan] = []
    for pcm in speak_alone(piper, sequence):
        spans += piper.words(sequence)
        total += len(pcm)
    assert [text[s.start_char : s.end_char] for s in spans] == text.split()
    assert all(a.end_sample <= b.start_sample for a, b in zip(spans, spans[1:], strict=False))
    assert all(s.start_sample < s.end_sample for s in spans) and spans[-1].end_sample <= total


def test_words_follow_a_time_stretch() -> None:
    rate = 16000
    post = PostProcessor(rate, gain=1.0, speed=2.0)
    tone = (8000 * np.sin(np.arange(rate * 2) * 2 * np.pi * 200 / rate)).astype(np.int16)
    sent = post.process(tone)
    assert len(sent) == pytest.approx(rate, rel=0.05)
    assert post.output_position(rate) == pytest.approx(len(sent) / 2, rel=0.05)
    assert post.output_position(3 * rate) == pytest.approx(len(sent) + rate / 2, rel=0.05)
