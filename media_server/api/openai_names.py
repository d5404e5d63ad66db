"""OpenAI's model and voice names, mapped onto this server's backend and voices.

Existing OpenAI code switches to this server by changing `base_url` alone: its
model names (`tts-1`, `tts-1-hd`, `gpt-4o-mini-tts`) name whatever backend is
loaded, and its voice names map through a table. The default table sends every
OpenAI voice to the backend's default voice; `OPENAI_VOICE_MAP` (JSON, e.g.
`{"alloy": "en_US-joe-medium", "nova": "vivian"}`) overrides entries.
"""

from __future__ import annotations

from collections.abc import Mapping

from media_server.errors import InvalidRequest

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip


def check_model(model: str | None, backend: str) -> None:
    """Accept OpenAI's model names and the loaded backend's own name."""
    if model is not None and model not in (*OPENAI_MODELS, backend):
        choices = ", ".join((*OPENAI_MODELS, backend))
        raise InvalidRequest(f"model: unknown model {model!r}; use one of {choices}")


def map_voice(voice: str, table: Mapping[str, str]) -> str | None:
    """Our voice id for `voice` (None: the default voice); unknown names pass through to be checked."""
    if voice in table:
        return table[voice]
    return None if voice in OPENAI_VOICES else voice
