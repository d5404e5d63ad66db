"""Language identification: short sentences in many languages, script fallbacks, offline model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from media_server.text.langid import detect_language

SENTENCES = [
    ("Hello there, how are you today?", "en"),
    ("The weather is nice this morning.", "en"),
    ("Bonjour, comment allez-vous ?", "fr"),
    ("Merci beaucoup pour votre aide.", "fr"),
    ("Guten Tag, wie geht es Ihnen?", "de"),
    ("Ich möchte einen Kaffee, bitte.", "de"),
    ("Hola, ¿cómo estás?", "es"),
    ("¿Dónde está la estación de tren?", "es"),
    ("Ciao, come stai oggi?", "it"),
    ("Olá, como vai você?", "pt"),
    ("Goedemorgen, hoe gaat het?", "nl"),
    ("Dzień dobry, jak się masz?", "pl"),
    ("Hej, hur mår du?", "sv"),
    ("Привет, как дела?", "ru"),
    ("Добрий день, як справи?", "uk"),
    ("مرحبا كيف حالك", "ar"),
    ("नमस्ते, आप कैसे हैं?", "hi"),
    ("你好，你好吗？", "zh"),
    ("こんにちは、元気ですか", "ja"),
    ("今日は雨です", "ja"),
    ("안녕하세요", "ko"),
    ("Γεια σου, τι κάνεις;", "el"),
    ("שלום, מה שלומך?", "he"),
    ("สวัสดีครับ", "th"),
]


@pytest.mark.parametrize(("text", "language"), SENTENCES)
def test_short_sentences(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("", "en"),
        ("123 456 !?", "en"),
        ("Hi", "en"),
        ("ok", "en"),
        ("Да", "ru"),
        ("نعم", "ar"),
        ("日本", "zh"),
        ("カタカナ", "ja"),
        ("한", "ko"),
    ],
)
def test_short_text_falls_back_on_the_script(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_the_default_is_the_callers() -> None:
    assert detect_language("", default="fr") == "fr"
    assert detect_language("Hi", default="de") == "de"


def test_runs_offline_without_writing_a_cache(tmp_path: Path) -> None:
    cache, home = tmp_path / "cache", tmp_path / "home"
    home.mkdir()
    # A dead proxy makes any download attempt fail instead of quietly succeeding.
    env = os.environ | {
        "FTLANG_CACHE": str(cache),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    script = "from media_server.text.langid import detect_language as d; print(d('Bonjour tout le monde'))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "fr"
    assert not cache.exists()
    assert list(home.iterdir()) == []
