"""Word timings: from the spans a backend times in the text it spoke to the words of the text as written.

A backend speaks normalized text ("three dollars and fifty cents") and times
what it says in it: a `WordSpan` is a run of characters of that text (a
whitespace-separated word) with the samples of the backend's own output it
covers. `WordTracker` turns these into `WordTiming`s of the request's
original text: each span is mapped back through the normalization
(`Normalized.origin`) to the written words it came from, and spans that come
from the same written words are one word ("$3.50" is one word, said as five;
"5 km" is one word, said as two). Times are then moved from the backend's
samples to the samples actually sent (after the trim of leading silence and
any time-stretch: `Placement`), and a word is released with the first audio
that carries its start, never before (one whose end reaches into trailing
silence held back waits until that silence is sent or dropped, and then ends
at most with the audio).

A written word that makes no sound (a dash) gets no timing; a word whose start
lies in trailing silence that was dropped is never released (it was never
heard).

A backend that cannot time what it says itself (Qwen3-TTS) hands each
finished segment's audio to an `Aligner`; until a forced aligner can be
installed, `EstimatingAligner` shares the audio out by word length.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from media_server.engine.types import Pcm, WordTiming
from media_server.text.normalize import Normalized
from media_server.text.segmenter import CLAUSE_END, SENTENCE_END

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class WordSpan:
    """A word of the text the backend spoke, and where in its output it is said."""

    start_char: int
    end_char: int
    """The word's characters in the backend's text (its request's, normalized)."""
    start_sample: int
    end_sample: int
    """Samples of the backend's own output for the request, from its first."""
    estimated: bool = False
    """Estimated from the text and the audio's length, not measured (a backend without an aligner)."""


class Placement(Protocol):
    """Where the backend's samples ended up in the audio sent (`PostProcessor`)."""

    @property
    def emitted_until(self) -> int:
        """How many of the backend's samples have been accounted for in the audio sent so far."""

    @property
    def received_until(self) -> int:
        """How many of the backend's samples have been received (those past `emitted_until` are held silence)."""

    @property
    def sent_samples(self) -> int:
        """How many samples of audio have been sent so far."""

    def output_position(self, sample: int) -> float:
        """Where the backend's `sample` is in the audio sent (extrapolated past `emitted_until`)."""


@dataclass
class _Group:
    first_token: int
    last_token: int
    start_sample: int
    end_sample: int
    estimated: bool
    last_char: int


class WordTracker:
    """One request's words: spans in, timed words of the original text out, in order, as their audio goes."""

    def __init__(self, original: str, normalized: Normalized, sample_rate: int) -> None:
        self._original = original
        self._normalized = normalized
        self._rate = sample_rate
        tokens = [(m.start(), m.end()) for m in _WORD.finditer(original)]
        self._token_starts = [start for start, _ in tokens]
        self._token_ends = [end for _, end in tokens]
        self._said_until = [0] * len(tokens)
        """Per written word, the end of the last normalized word that comes from it."""
        for m in _WORD.finditer(normalized.text) if tokens else ():  # nothing written: nothing to time
            first, last = self._tokens_of(m.start(), m.end())
            for token in range(first, last + 1):
                self._said_until[token] = max(self._said_until[token], m.end())
        self._open: _Group | None = None
        self._ready: list[_Group] = []
        self._released_tokens = -1

    def add(self, spans: list[WordSpan]) -> None:
        """Spans the backend has just timed, in order."""
        if not self._token_starts:
            return
        for span in spans:
            first, last = self._tokens_of(span.start_char, span.end_char)
            if last <= self._released_tokens:
                continue  # the rest of a word already released: its start was heard with its first part
            group = self._open
            if group is not None and first <= group.last_token:
                group.last_token = max(group.last_token, last)
                group.end_sample = max(group.end_sample, span.end_sample)
                group.last_char = max(group.last_char, span.end_char)
                group.estimated = group.estimated or span.estimated
            else:
                if group is not None:
                    self._ready.append(group)
                group = _Group(first, last, span.start_sample, span.end_sample, span.estimated, span.end_char)
                self._open = group
            if group.last_char >= self._said_until[group.last_token]:
                self._ready.append(group)
                self._open = None

    def release(self, placement: Placement, final: bool = False) -> tuple[WordTiming, ...]:
        """The words whose start is now in the audio sent; `final`: the request is over (the last open word too)."""
        if final and self._open is not None:
            self._ready.append(self._open)
            self._open = None
        released: list[WordTiming] = []
        while self._ready and self._ready[0].start_sample < placement.emitted_until:
            if not final and _ends_in_held_silence(self._ready[0], placement):
                break
            group = self._ready.pop(0)
            self._released_tokens = group.last_token
            start = placement.output_position(group.start_sample)
            end = placement.output_position(group.end_sample)
            if final:
                end = min(end, placement.sent_samples)  # the trailing silence it reached into was dropped
            end = max(start, end)
            text = self._original[self._token_starts[group.first_token] : self._token_ends[group.last_token]]
            released.append(WordTiming(text, start / self._rate, end / self._rate, group.estimated))
        return tuple(released)

    def _tokens_of(self, start: int, end: int) -> tuple[int, int]:
        """The written words (first, last index) that the normalized characters `start:end` came from."""
        if not self._token_starts:
            return 0, 0
        origin_start, origin_end = self._normalized.origin(start, end)
        first = bisect.bisect_right(self._token_ends, origin_start)
        last = bisect.bisect_left(self._token_starts, max(origin_end, origin_start + 1)) - 1
        first = min(first, len(self._token_starts) - 1)
        return first, max(first, last)


def _ends_in_held_silence(group: _Group, placement: Placement) -> bool:
    """The word's end lies in silence held back: where it ends in the audio is known once that silence is sent
    (speech follows) or dropped (the request ends)."""
    return placement.emitted_until < group.end_sample and placement.emitted_until < placement.received_until


class Aligner(Protocol):
    """Times the words of one segment of text in the audio that says it (a backend without durations of its own)."""

    def align(self, text: str, starts: Sequence[int], audio: Pcm, offset: int) -> list[WordSpan]:
        """Spans for the words of `text` (they start at `starts` in the request's text) said by `audio`, whose
        first sample is the backend's sample `offset`."""


class EstimatingAligner:
    """No aligner model: each word gets a share of the audio by its length, and a pause after punctuation.

    The spans are marked `estimated`. A forced aligner (CTC over the audio) would be another `Aligner`.
    """

    def align(self, text: str, starts: Sequence[int], audio: Pcm, offset: int) -> list[WordSpan]:
        words = text.split(" ") if text else []
        weights = [(max(1, sum(ch.isalnum() for ch in word)), _pause_after(word)) for word in words]
        total = sum(said + pause for said, pause in weights)
        if not total:
            return []
        spans: list[WordSpan] = []
        at = 0.0
        per_unit = len(audio) / total
        for word, start, (said, pause) in zip(words, starts, weights, strict=True):
            begin = offset + round(at * per_unit)
            end = offset + round((at + said) * per_unit)
            spans.append(WordSpan(start, start + len(word), begin, end, estimated=True))
            at += said + pause
        return spans


def _pause_after(word: str) -> int:
    """Weight of the pause after `word`, in letters: a sentence end's is longer than a clause's."""
    if word[-1:] in SENTENCE_END:
        return 4
    if word[-1:] in CLAUSE_END:
        return 2
    return 0
