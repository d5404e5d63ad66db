"""Incremental segmentation: streamed text fragments in, speakable segments out.

A segment is released as soon as it is known to be complete: a sentence end
(`.`, `!`, `?`, `…`) or, when the segment is long enough, a clause end (`,`,
`;`, `:`, dashes), followed by whitespace. The first segment of an utterance is
kept short (a clause, or a few words) so the first audio comes quickly; later
segments are whole sentences, which sound better. A segment with no punctuation
is cut at a word boundary once it exceeds `max_chars`; text with no whitespace
(`word,word,...`) at a punctuation mark past `max_chars`, else anywhere at twice
that, so no segment is unbounded. A raw-phoneme block (`[[ ... ]]`, which the
engine makes of SSML phonemes) is never cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SENTENCE_END = frozenset(".!?…。！？")
CLAUSE_END = frozenset(",;:—–、，；：")
# Words whose trailing period does not end a sentence.
ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st vs etc e.g i.e fig no approx dept est inc ltd co mt ft".split())
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")
_PHONEME_BLOCK = re.compile(r"\[\[.*?\]\]")


@dataclass(frozen=True)
class SegmenterPolicy:
    """How eagerly segments are released."""

    first_segment_words: int = 6
    min_clause_chars: int = 40
    max_chars: int = 240


class Segmenter:
    """Turns `append`ed fragments into complete segments; `flush` returns the rest."""

    def __init__(self, policy: SegmenterPolicy | None = None) -> None:
        self._policy = policy or SegmenterPolicy()
        self._buffer = ""
        self._released = 0

    def append(self, fragment: str) -> list[str]:
        self._buffer += fragment
        out: list[str] = []
        while (cut := self._next_cut()) is not None:
            self._emit(self._buffer[:cut], out)
            self._buffer = self._buffer[cut:]
        return out

    def flush(self) -> list[str]:
        out: list[str] = []
        self._emit(self._buffer, out)
        self._buffer = ""
        self._released = 0
        return out

    @property
    def pending(self) -> str:
        return self._buffer

    def _emit(self, text: str, out: list[str]) -> None:
        segment = " ".join(text.split())
        if segment and any(ch.isalnum() for ch in segment):
            out.append(segment)
            self._released += 1

    def _next_cut(self) -> int | None:
        """Index just past the first complete segment in the buffer, or None."""
        text = self._buffer
        first = self._released == 0
        start = len(text) - len(text.lstrip())
        words = 0
        inside = {i for block in _PHONEME_BLOCK.finditer(text) for i in range(block.start(), block.end() - 1)}
        for i in range(start, len(text) - 1):
            if i in inside:
                continue
            ch, nxt = text[i], text[i + 1]
            length = i + 1 - start
            if not nxt.isspace():
                if length >= self._policy.max_chars and (ch in SENTENCE_END or ch in CLAUSE_END):
                    return i + 1
                if length >= 2 * self._policy.max_chars:
                    return i + 1
                continue
            if not ch.isspace():
                words += 1
            if ch in SENTENCE_END and not self._is_abbreviation(text[: i + 1]):
                return i + 1
            if ch in CLAUSE_END and (first or length >= self._policy.min_clause_chars):
                return i + 1
            if first and words >= self._policy.first_segment_words:
                return i + 1
            if length >= self._policy.max_chars:
                return i + 1
        return None

    @staticmethod
    def _is_abbreviation(text: str) -> bool:
        match = _WORD_BEFORE.search(text)
        if match is None:
            return False
        word = match.group(1).lower()
        return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_text(text: str, policy: SegmenterPolicy | None = None) -> list[str]:
    """Segments of a whole text, as the incremental segmenter would release them."""
    segmenter = Segmenter(policy)
    return segmenter.append(text) + segmenter.flush()


def split_text_located(text: str, policy: SegmenterPolicy | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """`split_text`, each segment with where each of its words starts in `text`.

    Segments are the text's own characters in order with whitespace collapsed, so
    each word is found right after the previous one, past any whitespace.
    """
    located: list[tuple[str, tuple[int, ...]]] = []
    cursor = 0
    for segment in split_text(text, policy):
        starts: list[int] = []
        for word in segment.split(" "):
            while cursor < len(text) and text[cursor].isspace():
                cursor += 1
            starts.append(cursor)
            cursor += len(word)
        located.append((segment, tuple(starts)))
    return located
