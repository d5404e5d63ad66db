"""The Piper backend in bounded steps: windowed decoding is exact, output is deterministic, units are bounded.

Uses the real bundled voice (its graph cut into stages at load), driving the
backend directly, without the engine around it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from media_server.config import Settings
from media_server.engine.backends.base import speak_alone
from media_server.engine.backends.piper import PiperBackend
from media_server.engine.backends.piper.graph import DECODER_CONTEXT, FLOW_CONTEXT, Floats
from media_server.engine.backends.piper.pieces import FIRST_PIECE_IDS, MAX_PIECE_IDS, split_phonemes
from media_server.engine.backends.piper.sequence import PiperSequence, Unit, frame_counts
from media_server.engine.backends.piper.windows import FLOW_CHUNK, WINDOW, decoder_windows, flow_spans
from media_server.engine.types import Pcm, SamplingParams, SynthesisRequest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Your order has shipped and should arrive on Thursday afternoon.",
    "I found three restaurants nearby, and the closest one is a small Italian place.",
    "Let me check the calendar for next week.",
    "The weather tomorrow will be sunny, with a light breeze from the west.",
    "Thanks for calling; is there anything else I can do for you today?",
    "A journey of a thousand miles begins with a single step.",
    "Please remember to bring your passport and two photographs.",
    "She sells sea shells by the sea shore, or so they say.",
    "Turn left at the second traffic light, then keep straight on.",
    "The museum opens at nine and closes at half past five.",
    "Every morning he walks the dog before breakfast.",
    "The committee will announce its decision after the meeting.",
    "Could you please repeat the last part of the question?",
    "Water boils at a lower temperature high in the mountains.",
    "The library has extended its opening hours during the exams.",
    "Our flight was delayed by two hours because of the storm.",
    "He plays the violin in a small orchestra on weekends.",
    "Remember to switch off the lights when you leave the room.",
    "The children built an enormous sandcastle on the beach yesterday afternoon.",
]


@pytest.fixture(scope="module")
def backend() -> Iterator[PiperBackend]:
    piper = PiperBackend(Settings())
    piper.load()
    yield piper
    piper.unload()


def synthesize(backend: PiperBackend, request: SynthesisRequest) -> Pcm:
    return np.concatenate(list(speak_alone(backend, backend.open(request, backend.voices()[0]))))


def windowed_and_whole(backend: PiperBackend, text: str) -> Iterator[tuple[Floats, Floats]]:
    """Each piece's audio as the windows make it, and decoded whole from the same latent prior."""
    sequence = backend.open(SynthesisRequest(text=text), backend.voices()[0])
    stages, voice = backend._stages, backend._voice
    assert stages is not None and voice is not None
    windows: list[Floats] = []
    reference: Floats | None = None
    while (unit := sequence.next_unit(voice)) is not None:
        if unit.kind == "encode" and reference is not None:
            yield np.concatenate(windows), reference
            windows = []
        made = sequence.run_next(stages)
        if unit.kind == "encode":
            assert sequence.piece is not None
            latent = stages.flow(sequence.piece.prior_sample, None)
            reference = stages.decode(latent, None)
        if made is not None:
            windows.append(made)
    assert reference is not None
    yield np.concatenate(windows), reference


def test_windowed_decoding_matches_whole_piece_decoding_on_twenty_sentences(backend: PiperBackend) -> None:
    worst = 0.0
    for text in SENTENCES:
        for windowed, whole in windowed_and_whole(backend, text):
            assert len(windowed) == len(whole)
            worst = max(worst, float(np.abs(windowed - whole).max()))
    # Float rounding only: far below one step of 16-bit audio (3.1e-5 of full scale).
    assert worst < 1e-5


def test_the_same_text_gives_the_same_samples_whatever_the_step_budget() -> None:
    texts = " ".join(SENTENCES[:4])
    outputs = []
    for budget_ms in (1.0, 30.0, 10_000.0):
        piper = PiperBackend(Settings(step_budget_ms=budget_ms))
        piper.load()
        outputs.append(synthesize(piper, SynthesisRequest(text=texts)))
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])


def test_a_seed_changes_the_rendition_and_fixes_it(backend: PiperBackend) -> None:
    text = SENTENCES[0]
    plain = synthesize(backend, SynthesisRequest(text=text))
    seeded = synthesize(backend, SynthesisRequest(text=text, sampling=SamplingParams(seed=5)))
    assert np.array_equal(plain, synthesize(backend, SynthesisRequest(text=text)))
    assert np.array_equal(seeded, synthesize(backend, SynthesisRequest(text=text, sampling=SamplingParams(seed=5))))
    assert not np.array_equal(plain, seeded)


@pytest.mark.parametrize("speed", [0.5, 1.5, 2.0, 4.0])
def test_speed_scales_the_duration_exactly(backend: PiperBackend, speed: float) -> None:
    text = SENTENCES[2]
    normal = len(synthesize(backend, SynthesisRequest(text=text)))
    changed = len(synthesize(backend, SynthesisRequest(text=text, speed=speed)))
    assert changed / normal == pytest.approx(1 / speed, rel=0.01)


def test_frame_counts_keep_the_total_proportional() -> None:
    durations = np.array([0.3, 1.2, 2.7, 0.1, 5.5, 3.0], dtype=np.float32)
    assert frame_counts(durations, 1.0).tolist() == [1, 2, 3, 1, 6, 3]
    assert frame_counts(durations, 2.0).sum() == 8
    assert frame_counts(durations, 0.5).sum() == 32


@pytest.mark.parametrize(
    "text",
    ["word," * 1000, "1," * 2500, "a" * 4999, "Supercalifragilistic " * 200, " ".join(SENTENCES * 5)],
    ids=["words-and-commas", "digits-and-commas", "one-letter", "long-words", "many-sentences"],
)
def test_no_unit_is_unbounded_whatever_the_text(backend: PiperBackend, text: str) -> None:
    voice = backend._voice
    assert voice is not None
    sequence = backend.open(SynthesisRequest(text=text), backend.voices()[0])
    limits = {
        "encode": MAX_PIECE_IDS,
        "flow": FLOW_CHUNK + 2 * FLOW_CONTEXT,
        "decode": WINDOW + 2 * DECODER_CONTEXT,
    }
    units: list[Unit] = []
    while (unit := sequence.next_unit(voice)) is not None and len(units) < 60:
        units.append(unit)
        assert unit.size <= limits[unit.kind], unit
        if unit.kind == "encode" and len(units) == 1:
            assert unit.size <= FIRST_PIECE_IDS
        run(sequence, backend)
    assert {unit.kind for unit in units} == {"encode", "flow", "decode"}


def run(sequence: PiperSequence, backend: PiperBackend) -> None:
    assert backend._stages is not None
    sequence.run_next(backend._stages)


def test_the_first_audio_comes_in_the_first_step(backend: PiperBackend) -> None:
    for text in SENTENCES[:5]:
        sequence = backend.open(SynthesisRequest(text=text), backend.voices()[0])
        first = backend.step([sequence])[0]
        assert isinstance(first, np.ndarray) and len(first) > 0


def test_long_phoneme_runs_are_cut_after_a_clause_then_a_word_then_anywhere() -> None:
    phonemes = list("ab cd, ef gh ij")
    assert split_phonemes(phonemes, 10) == [list("ab cd,"), list("ef gh ij")]
    assert split_phonemes(list("ab cd ef gh"), 6) == [list("ab cd"), list("ef gh")]
    assert split_phonemes(list("abcdefghij"), 4) == [list("abcd"), list("efgh"), list("ij")]


def test_windows_and_flow_ranges_depend_on_the_frame_count_alone() -> None:
    for frames in (1, 30, 127, 128, 129, 500):
        for opening in (True, False):
            windows = decoder_windows(frames, opening)
            assert windows[0].start == 0 and windows[-1].end == frames
            assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))
            spans = flow_spans(frames, opening)
            assert spans[0].start == 0 and spans[-1].end == frames
    assert len(flow_spans(128, True)) == 1
