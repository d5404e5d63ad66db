"""The text a backend is given: a request's text normalized, with SSML's inline readings and phonemes in place.

`spoken_text(text, ssml, language, phonemes)` is what the engine core runs
on each request. Plain text is normalized (`normalize.py`). An SSML request
here is the inline part the engine front made of a document
(`ssml.fragment`): its plain text is normalized in one piece, so rules that
look at neighbouring words still see them, while `<say-as>` readings
(`say_as.py`) and `<phoneme>`s go in after normalization, untouched by it.
A phoneme becomes a `[[ ... ]]` block, the raw-phoneme syntax of Piper's
phonemizer, for a voice that speaks phonemes (`phonemes=True`); any other
voice says the element's text.

Text from a client never makes a phoneme block: runs of brackets in it are
cut to one bracket. Characters of Unicode's private use area are dropped
(they spell nothing, and they hold the places of the readings here).
"""

from __future__ import annotations

import re

from media_server.text.normalize import normalize
from media_server.text.say_as import read_as
from media_server.text.ssml import Phoneme, SayAs, Text, inline_content

__all__ = ["phoneme_block", "spoken_text"]

_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_BRACKET_RUNS = re.compile(r"\[{2,}|\]{2,}")
_PLACE = 0xE000


def phoneme_block(ipa: str) -> str:
    """`ipa` in Piper's raw-phoneme syntax."""
    return f"[[ {ipa} ]]"


def spoken_text(text: str, ssml: bool, language: str, phonemes: bool) -> str:
    """The words (and phoneme blocks) a backend should speak for `text` in `language`."""
    if not ssml:
        return normalize(_defused(text), language)
    written: list[str] = []
    readings: list[str] = []
    for item in inline_content(text):
        reading: str | None = None
        match item:
            case Text(text=plain):
                written.append(_defused(plain))
                continue
            case SayAs(kind=kind, format=form, text=content):
                reading = read_as(kind, form, content, language)
            case Phoneme(ipa=ipa):
                reading = phoneme_block(ipa) if phonemes else None
        if reading is None:
            written.append(_defused(item.text))
        else:
            written.append(chr(_PLACE + len(readings)))
            readings.append(reading)
    normalized = normalize("".join(written), language)
    return re.sub("[\ue000-\uf8ff]", lambda m: readings[ord(m[0]) - _PLACE], normalized)


def _defused(text: str) -> str:
    return _BRACKET_RUNS.sub(lambda m: m[0][0], _PRIVATE_USE.sub("", text))
