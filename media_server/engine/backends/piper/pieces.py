"""Text to bounded pieces of phoneme ids: the most text one encoder run may cover.

The encoder's cost grows with its input, so a sentence longer than `MAX_PIECE_IDS`
ids is cut into pieces that are not, preferably after a clause mark (a comma, a
semicolon...), else at a word boundary, else (a "word" thousands of phonemes long)
anywhere. Most sentences are one piece, which keeps their prosody whole.
"""

from __future__ import annotations

import numpy as np
from piper import PiperVoice

from media_server.engine.backends.piper.graph import Ids

MAX_PIECE_IDS = 200
"""About 90 characters of English; encoding it takes about 23 ms on one core of the reference machine."""
FIRST_PIECE_IDS = 96
"""A request's first piece: its first audio waits for this encoding (about 10 ms)."""
IDS_PER_CHAR = 2
"""Phoneme ids per character of English text, about (a pad id follows every phoneme)."""
CLAUSE_MARKS = frozenset(",;:—–")
WORD_BREAK = " "


def phoneme_pieces(
    voice: PiperVoice, text: str, max_ids: int = MAX_PIECE_IDS, first_max_ids: int | None = None
) -> list[Ids]:
    """The phoneme ids of `text`, sentence by sentence, each sentence cut into pieces of at most `max_ids`.

    `first_max_ids` bounds the first piece more tightly (a request's first audio waits for it).
    """
    runs: list[list[str]] = []
    for sentence in voice.phonemize(text):
        rest = _strip(sentence)
        if first_max_ids is not None and not runs and len(rest) > _phoneme_limit(first_max_ids):
            cut = _best_cut(rest, _phoneme_limit(first_max_ids))
            runs.append(_strip(rest[:cut]))
            rest = _strip(rest[cut:])
        runs.extend(split_phonemes(rest, _phoneme_limit(max_ids)))
    return [np.asarray(voice.phonemes_to_ids(run), dtype=np.int64) for run in runs if run]


def _phoneme_limit(max_ids: int) -> int:
    # phonemes_to_ids frames a piece with begin/end ids and follows every phoneme with a pad id.
    return max(1, (max_ids - 3) // 2)


def split_phonemes(phonemes: list[str], limit: int) -> list[list[str]]:
    """`phonemes` cut into runs of at most `limit`, each cut at the best boundary in its second half or so."""
    pieces: list[list[str]] = []
    rest = _strip(phonemes)
    while len(rest) > limit:
        cut = _best_cut(rest, limit)
        pieces.append(_strip(rest[:cut]))
        rest = _strip(rest[cut:])
    if rest:
        pieces.append(rest)
    return [piece for piece in pieces if piece]


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


def _strip(phonemes: list[str]) -> list[str]:
    start, end = 0, len(phonemes)
    while start < end and phonemes[start] == WORD_BREAK:
        start += 1
    while end > start and phonemes[end - 1] == WORD_BREAK:
        end -= 1
    return phonemes[start:end]
