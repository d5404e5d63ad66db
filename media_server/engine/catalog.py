"""VoiceCatalog: the checks before admission (text, parameters, language, voice) over a core's voices.

The engine front (`front.py`) runs these on every request, whatever core is
behind it, so a bad request is refused at once, synchronously, with the same
messages and error classes in every mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from media_server.engine.types import Voice
from media_server.errors import InvalidRequest, NothingToSpeak, TextTooLong, UnknownVoice, UnsupportedLanguage
from media_server.text.langid import CONFIDENT, identify, wholly_in


class VoiceCatalog:
    def __init__(self, voices: Callable[[], Sequence[Voice]], max_text_chars: int) -> None:
        self._source = voices
        self._max_text_chars = max_text_chars

    def resolve_voice(self, voice_id: str | None, language: str | None = None) -> Voice:
        """The voice named `voice_id`, or the first that speaks `language`, or the default one."""
        voices = {voice.id: voice for voice in self._source()}
        if voice_id in (None, "", "default"):
            if language is None:
                return next(iter(voices.values()))
            speakers = [voice for voice in voices.values() if speaks(voice, language)]
            if not speakers:
                spoken = ", ".join(sorted({code for v in voices.values() for code in v.languages}))
                raise UnsupportedLanguage(f"language: no loaded voice speaks {language!r}; they speak {spoken}")
            return speakers[0]
        voice = voices.get(voice_id or "")
        if voice is None:
            known = ", ".join(sorted(voices))
            raise UnknownVoice(f"voice: unknown voice {voice_id!r}; known voices: {known}")
        if language is not None and not speaks(voice, language):
            raise UnsupportedLanguage(
                f"language: voice {voice.id!r} speaks {', '.join(voice.languages)}, not {language!r}"
            )
        return voice

    def validate_text(self, text: str) -> None:
        if not text.strip():
            raise InvalidRequest("text: must not be empty")
        if not any(character.isalnum() for character in text):
            raise NothingToSpeak("text: has no letter or digit to speak (only punctuation, symbols or emoji)")
        if "\x00" in text:
            raise InvalidRequest(f"text: character {text.index(chr(0))} is U+0000 (NUL), which no voice can read")
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise InvalidRequest(f"text: character {exc.start} is an unpaired surrogate, not a character") from exc
        if len(text) > self._max_text_chars:
            raise TextTooLong(f"text: {len(text)} characters is over the limit of {self._max_text_chars}")

    def detect(self, text: str, voice_id: str | None, expected: str | None = None) -> str:
        """The language to speak `text` in, for `language: "auto"`, with voice `voice_id` (None: any voice).

        A likely guess that a voice speaks is taken, unless another language is
        `expected` (what a session has been speaking) and the guess is not clear
        (a long sentence, or a script only one language uses). Otherwise the text
        is spoken in the expected language, or the voice's own, unless it is
        clearly and wholly in a language no voice speaks: that is refused.
        """
        candidates = [self.resolve_voice(voice_id)] if voice_id not in (None, "", "default") else self._source()

        def spoken(code: str) -> bool:
            return any(speaks(candidate, code) for candidate in candidates)

        voice = self.resolve_voice(voice_id)
        fallback = expected if expected is not None and speaks(voice, expected) else voice.languages[0]
        guess = identify(text)
        if guess is not None and guess.confidence >= CONFIDENT and spoken(guess.language):
            if expected is None or guess.clear:
                return guess.language
        foreign = wholly_in(text, lambda code: not spoken(code))
        if foreign is not None:
            theirs = ", ".join(sorted({code for v in candidates for code in v.languages}))
            raise UnsupportedLanguage(
                f"language: the text is in {foreign!r}, which no voice here speaks (they speak {theirs}); "
                "set `language` to one of theirs to have it read as that"
            )
        return fallback


def speaks(voice: Voice, language: str) -> bool:
    """Whether `voice` speaks `language` (case aside; a regional code matches its base language)."""
    wanted = language.lower()
    return any(code.lower() in (wanted, wanted.split("-")[0]) for code in voice.languages)
