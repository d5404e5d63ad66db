"""The text a backend is given: a request's text normalized, with SSML's inline readings and phonemes in place.

`spoken_text(text, ssml, language, phonemes)` is what the engine core runs
on each request. Plain text is normalized (`normalize.py`). An SSML request
here is the inline part the engine front made of a document
(`ssml.fragment`): its plain text is normalized in one piece, so rules that
look at neighbouring words still see them, while aliases (`<sub>`, a
dictionary's alias rules; normalized on their own), `<say-as>` readings
(`say_as.py`) and `<phoneme>`s go in after normalization, untouched by it.
A phoneme becomes a `[[ ... ]]` block, the raw-phoneme syntax of Piper's
phonemizer, for a voice that speaks phonemes (`phonemes=True`); any other
voice says the element's text.

The result also says where each of its characters came from in the text as
written (`Spoken.written`: the document's text with its elements' own text,
an alias's and a phoneme's written words included), so word timings name the
words the user wrote, through aliases, readings and normalization alike.

Text from a client never makes a phoneme block: runs of brackets in it are
cut to one bracket. Characters of Unicode's private use areas are dropped
(they spell nothing, and those of planes 15 and 16 hold the places of the
readings here: `MAX_READINGS` of them; any further element is said as its
written text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from media_server.text.normalize import Normalized, normalize, normalize_aligned
from media_server.text.say_as import read_as
from media_server.text.ssml import Phoneme, SayAs, Sub, Text, inline_content

__all__ = ["Spoken", "phoneme_block", "spoken_text"]

_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
_BRACKET_RUNS = re.compile(r"\[{2,}|\]{2,}")
_PLACE = 0xF0000
MAX_READINGS = 0x110000 - _PLACE


@dataclass(frozen=True)
class Spoken:
    """What a backend should speak (`said.text`), and for each character the span of `written` it says."""

    written: str
    said: Normalized


def phoneme_block(ipa: str) -> str:
    """`ipa` in Piper's raw-phoneme syntax."""
    return f"[[ {ipa} ]]"


def spoken_text(text: str, ssml: bool, language: str, phonemes: bool) -> Spoken:
    """The words (and phoneme blocks) a backend should speak for `text` in `language`."""
    if not ssml:
        written = _defused(text)
        return Spoken(written, normalize_aligned(written, language))
    written_parts: list[str] = []
    work: list[str] = []
    # For each character of `work`, the span of the written text it stands for.
    starts: list[int] = []
    ends: list[int] = []
    readings: list[str] = []
    at = 0
    for item in inline_content(text):
        plain = _defused(item.text)
        reading: str | None = None
        match item:
            case Text():
                pass
            case Sub(alias=alias):
                reading = normalize(_defused(alias), language)
            case SayAs(kind=kind, format=form, text=content):
                reading = read_as(kind, form, content, language)
            case Phoneme(ipa=ipa):
                reading = phoneme_block(ipa) if phonemes else None
        written_parts.append(plain)
        if reading is None or len(readings) == MAX_READINGS:
            work.append(plain)
            starts += range(at, at + len(plain))
            ends += range(at + 1, at + len(plain) + 1)
        else:
            work.append(chr(_PLACE + len(readings)))
            readings.append(reading)
            starts.append(at)
            ends.append(at + len(plain))
        at += len(plain)
    normalized = normalize_aligned("".join(work), language)
    said: list[str] = []
    said_starts: list[int] = []
    said_ends: list[int] = []
    for character, start, end in zip(normalized.text, normalized.starts, normalized.ends, strict=True):
        span_start = starts[start] if start < len(starts) else at
        span_end = ends[end - 1] if end > start else span_start  # else an insertion: where it was inserted
        piece = readings[ord(character) - _PLACE] if ord(character) >= _PLACE else character
        said.append(piece)
        said_starts += [span_start] * len(piece)
        said_ends += [span_end] * len(piece)
    return Spoken("".join(written_parts), Normalized("".join(said), tuple(said_starts), tuple(said_ends)))


def _defused(text: str) -> str:
    return _BRACKET_RUNS.sub(lambda m: m[0][0], _PRIVATE_USE.sub("", text))
