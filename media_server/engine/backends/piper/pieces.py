"""Text to bounded pieces of phoneme ids: the most text one encoder run may cover.

The encoder's cost grows with its input, so a sentence longer than `MAX_PIECE_IDS`
ids is cut into pieces that are not, preferably after a clause mark (a comma, a
semicolon...), else at a word boundary, else (a "word" thousands of phonemes long)
anywhere. Most sentences are one piece, which keeps their prosody whole.

Each piece also says which word of the text each of its ids speaks (`Piece.owners`,
from `alignment.py`), so the durations the encoder gives time the words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from piper import PiperVoice

from media_server.engine.backends.piper.alignment import NO_WORD, WORD_BREAK, WordPhonemes
from media_server.engine.backends.piper.graph import Ids

MAX_PIECE_IDS = 200
"""About 90 characters of English; encoding it takes about 23 ms on one core of the reference machine."""
FIRST_PIECE_IDS = 96
"""A request's first piece: its first audio waits for this encoding (about 10 ms)."""
IDS_PER_CHAR = 2
"""Phoneme ids per character of English text, about (a pad id follows every phoneme)."""
CLAUSE_MARKS = frozenset(",;:—–")
_WORD = re.compile(r"\S+")
_BOS, _PAD, _EOS = "^", "_", "$"


@dataclass(frozen=True)
class Piece:
    """Phoneme ids for one encoder run, and the word each id speaks."""

    ids: Ids
    owners: tuple[int, ...]
    """Per id, an index into `words` (NO_WORD for pads between words, pauses, the start and end marks)."""
    words: tuple[tuple[int, int], ...]
    """The words of the segment: their characters in the request's text."""


def phoneme_pieces(
    voice: PiperVoice,
    text: str,
    starts: Sequence[int],
    words: WordPhonemes,
    max_ids: int = MAX_PIECE_IDS,
    first_max_ids: int | None = None,
) -> list[Piece]:
    """The pieces of `text` (a segment, whose words start at `starts` in its request's text), sentence by
    sentence, each sentence cut into pieces of at most `max_ids`.

    `first_max_ids` bounds the first piece more tightly (a request's first audio waits for it).
    """
    tokens = list(_WORD.finditer(text))
    spans = tuple((start, start + len(m.group())) for m, start in zip(tokens, starts, strict=True))
    sentences = voice.phonemize(text)
    flat = [p for sentence in sentences for p in sentence]
    owners = words.owners([m.group() for m in tokens], flat)
    runs: list[tuple[list[str], list[int]]] = []
    at = 0
    for sentence in sentences:
        phonemes, said = sentence, owners[at : at + len(sentence)]
        at += len(sentence)
        start, end = _strip(phonemes, 0, len(phonemes))
        if first_max_ids is not None and not runs and end - start > _phoneme_limit(first_max_ids):
            cut = start + _best_cut(phonemes[start:end], _phoneme_limit(first_max_ids))
            first = _strip(phonemes, start, cut)
            runs.append((phonemes[first[0] : first[1]], said[first[0] : first[1]]))
            start, end = _strip(phonemes, cut, end)
        for a, b in _split(phonemes, start, end, _phoneme_limit(max_ids)):
            runs.append((phonemes[a:b], said[a:b]))
    pieces = []
    for phonemes, said in runs:
        if not phonemes:
            continue
        ids = np.asarray(voice.phonemes_to_ids(phonemes), dtype=np.int64)
        pieces.append(Piece(ids, _id_owners(voice, phonemes, said, len(ids)), spans))
    return pieces


def _id_owners(voice: PiperVoice, phonemes: list[str], said: list[int], count: int) -> tuple[int, ...]:
    """The word of each id, laid out as Piper lays out ids: start, pad, then each phoneme's ids and a pad, end.

    A pad after a sound belongs to its word; anything Piper would lay out otherwise gets no words.
    """
    id_map = voice.config.phoneme_id_map
    owners = [NO_WORD] * (len(id_map.get(_BOS, ())) + len(id_map.get(_PAD, ())))
    for phoneme, owner in zip(phonemes, said, strict=True):
        if phoneme not in id_map:
            continue
        owners.extend([owner] * (len(id_map[phoneme]) + len(id_map.get(_PAD, ()))))
    owners.extend([NO_WORD] * len(id_map.get(_EOS, ())))
    return tuple(owners) if len(owners) == count else (NO_WORD,) * count


def _phoneme_limit(max_ids: int) -> int:
    # phonemes_to_ids frames a piece with begin/end ids and follows every phoneme with a pad id.
    return max(1, (max_ids - 3) // 2)


def split_phonemes(phonemes: list[str], limit: int) -> list[list[str]]:
    """`phonemes` cut into runs of at most `limit`, each cut at the best boundary in its second half or so."""
    start, end = _strip(phonemes, 0, len(phonemes))
    return [phonemes[a:b] for a, b in _split(phonemes, start, end, limit)]


def _split(phonemes: list[str], start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """The ranges of `phonemes[start:end]` cut into runs of at most `limit` (none empty)."""
    runs: list[tuple[int, int]] = []
    while end - start > limit:
        cut = start + _best_cut(phonemes[start:end], limit)
        runs.append(_strip(phonemes, start, cut))
        start, end = _strip(phonemes, cut, end)
    if end > start:
        runs.append((start, end))
    return [(a, b) for a, b in runs if b > a]


def _best_cut(phonemes: list[str], limit: int) -> int:
    """Where to end the next piece: after the last clause mark, else the last word, within `limit`."""
    floor = max(1, limit // 3)
    breaks = [i for i in range(floor, limit + 1) if phonemes[i] == WORD_BREAK]
    after_clause = [i for i in breaks if phonemes[i - 1] in CLAUSE_MARKS]
    if after_clause:
        return after_clause[-1]
    if breaks:
        return breaks[-1]
    return limit


def _strip(phonemes: list[str], start: int, end: int) -> tuple[int, int]:
    while start < end and phonemes[start] == WORD_BREAK:
        start += 1
    while end > start and phonemes[end - 1] == WORD_BREAK:
        end -= 1
    return start, end
