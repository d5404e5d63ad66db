"""Which language an "auto" request is spoken in: mixed-language text, short foreign words, and the
refusal of text clearly and wholly in a language no voice speaks (real fastText, voices as data)."""

from __future__ import annotations

import pytest

from media_server.engine.catalog import VoiceCatalog
from media_server.engine.types import Voice
from media_server.errors import UnsupportedLanguage

ENGLISH = Voice(id="joe", name="Joe", backend="piper", languages=("en", "en-US"), sample_rate=22050)
FRENCH = Voice(id="amelie", name="Amélie", backend="qwen", languages=("fr",), sample_rate=24000)
BILINGUAL = Voice(id="duo", name="Duo", backend="qwen", languages=("de", "en"), sample_rate=24000)


def catalog(*voices: Voice) -> VoiceCatalog:
    return VoiceCatalog(lambda: voices, max_text_chars=5000)


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour!",
        "Gracias",
        "Bonjour! How are you today?",
        "Gracias, that was very kind of you.",
        "Hello, I am Jean-Pierre Dupont from Montréal.",
        "The café on Rue de Rivoli serves croissants.",
        "Good morning, Señor García.",
        "Merci beaucoup, mon ami.",
        "Hola amigo, ¿cómo estás? I am fine, thanks for asking.",
    ],
)
def test_greetings_names_and_mixed_text_are_spoken_by_the_english_voice(text: str) -> None:
    assert catalog(ENGLISH).detect(text, None) == "en"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Je voudrais réserver une table pour deux personnes ce soir, s'il vous plaît. Merci.", "fr"),
        ("Mein Name ist Hans und ich wohne seit vielen Jahren in Berlin.", "de"),
        ("안녕하세요", "ko"),
        ("こんにちは、元気ですか", "ja"),
    ],
)
def test_text_wholly_in_a_language_no_voice_speaks_is_refused(text: str, language: str) -> None:
    with pytest.raises(UnsupportedLanguage, match=f"'{language}'"):
        catalog(ENGLISH).detect(text, None)


def test_a_foreign_paragraph_goes_to_the_voice_that_speaks_it() -> None:
    text = "Je voudrais réserver une table pour deux personnes ce soir, s'il vous plaît."
    voices = catalog(ENGLISH, FRENCH)
    assert voices.detect(text, None) == "fr"
    assert voices.resolve_voice(None, "fr") == FRENCH
    with pytest.raises(UnsupportedLanguage):  # a named voice that cannot speak it
        voices.detect(text, "joe")


def test_a_short_text_is_spoken_in_the_language_expected() -> None:
    voices = catalog(BILINGUAL)
    # Alone, "Okay." is likely English; a session that has been speaking German keeps German for it.
    assert voices.detect("Okay.", "duo") == "en"
    assert voices.detect("Okay.", "duo", expected="de") == "de"
    # A clear sentence switches, whatever was expected.
    assert voices.detect("This is clearly an English sentence about the weather.", "duo", expected="de") == "en"
    # An expected language the voice does not speak is no fallback: the voice's own is.
    assert voices.detect("Bonjour!", "duo", expected="fr") == "de"
