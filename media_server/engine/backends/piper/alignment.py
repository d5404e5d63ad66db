"""Which word of the text each phoneme says, for a sentence phonemized whole.

espeak-ng phonemizes a sentence as a whole (its prosody and its readings
depend on the context), and its phoneme words are not the text's words: it
joins some ("of the" is one phoneme word, `ʌvðə`) and splits none we rely
on. So each word of the text is also phonemized alone (cached: most words
come back often), and the sentence's phonemes are aligned to the
concatenation of the words' phonemes with `difflib`: each phoneme of the
sentence gets the word whose phoneme it matched. Letters that match nothing
take their neighbour's word within the same phoneme word, stress marks the
word of the phoneme they stress; spaces and punctuation belong to no word
(they are pauses, not speech). A word said differently alone ("a" is `eɪ`
alone, `ɐ` in "at a time") may match nothing: it gets the unmatched sounds
next to its neighbours' matched ones.
"""

from __future__ import annotations

import difflib
import functools
import unicodedata
from collections.abc import Callable, Sequence

NO_WORD = -1
STRESS = frozenset("ˈˌ")
WORD_BREAK = " "


def _sounds(phoneme: str) -> bool:
    """Whether `phoneme` is a sound to align on (not a space, a stress mark or punctuation)."""
    if phoneme in STRESS or not phoneme:
        return False
    return unicodedata.category(phoneme[0])[0] in "LMN"


class WordPhonemes:
    """The phonemes of single words, cached; `phonemize` is the voice's (text -> sentences of phonemes)."""

    def __init__(self, phonemize: Callable[[str], list[list[str]]], cache_size: int = 8192) -> None:
        self._phonemize = phonemize
        self.of = functools.lru_cache(maxsize=cache_size)(self._sounds_of)

    def _sounds_of(self, word: str) -> tuple[str, ...]:
        return tuple(p for sentence in self._phonemize(word) for p in sentence if _sounds(p))

    def owners(self, words: Sequence[str], phonemes: Sequence[str]) -> list[int]:
        """For each of `phonemes` (a text's, phonemized whole), the index in `words` of the word it says."""
        sounds = [i for i, p in enumerate(phonemes) if _sounds(p)]
        target: list[str] = []
        target_owner: list[int] = []
        for index, word in enumerate(words):
            said = self.of(word)
            target.extend(said)
            target_owner.extend([index] * len(said))
        owners = [NO_WORD] * len(phonemes)
        matcher = difflib.SequenceMatcher(None, [phonemes[i] for i in sounds], target, autojunk=False)
        for a, b, size in matcher.get_matching_blocks():
            for k in range(size):
                owners[sounds[a + k]] = target_owner[b + k]
        matched = [owner != NO_WORD for owner in owners]
        _fill(phonemes, owners, len(words))
        _lend_to_unmatched_words(owners, matched, len(words))
        return owners


def _fill(phonemes: Sequence[str], owners: list[int], words: int) -> None:
    """Give unmatched sounds and stress marks a word, phoneme word by phoneme word, never going backwards."""
    start = 0
    last = NO_WORD
    while start < len(phonemes):
        end = start
        while end < len(phonemes) and phonemes[end] != WORD_BREAK:
            end += 1
        run = range(start, end)
        matched = [owners[i] for i in run if owners[i] != NO_WORD]
        fallback = matched[0] if matched else min(last + 1, words - 1)
        current = max(fallback, last)
        for i in run:
            if owners[i] != NO_WORD:
                current = max(owners[i], current)
            if _sounds(phonemes[i]) or phonemes[i] in STRESS:
                owners[i] = current
        for i in reversed(run):  # a stress mark says the sound after it
            if phonemes[i] in STRESS and i + 1 < end:
                owners[i] = owners[i + 1]
        if matched or any(owners[i] != NO_WORD for i in run):
            last = max(owners[i] for i in run)
        start = end + 1


def _lend_to_unmatched_words(owners: list[int], matched: list[bool], words: int) -> None:
    """Give a word that got no sound the unmatched sounds after its predecessor's matched ones (else before its
    successor's)."""
    present = set(owners)
    for word in range(words):
        if word in present:
            continue
        before = [i for i, owner in enumerate(owners) if owner == word - 1]
        after = [i for i, owner in enumerate(owners) if owner == word + 1]
        last_matched = max((i for i in before if matched[i]), default=None)
        first_matched = min((i for i in after if matched[i]), default=None)
        tail = [i for i in before if last_matched is not None and i > last_matched]
        head = [i for i in after if first_matched is not None and i < first_matched]
        for i in tail or head:
            owners[i] = word
        if tail or head:
            present.add(word)
