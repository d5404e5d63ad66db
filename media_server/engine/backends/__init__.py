"""Backend implementations and the lookup that builds one by name."""

from __future__ import annotations

from typing import Any

from media_server.config import Settings
from media_server.engine.backends.base import Backend


def create_backend(settings: Settings) -> Backend[Any]:
    """The backend named by `TTS_BACKEND`; heavy imports happen only for the chosen one."""
    if settings.tts_backend == "qwen":
        from media_server.engine.backends.qwen.backend import QwenBackend

        return QwenBackend(settings)
    from media_server.engine.backends.piper import PiperBackend

    return PiperBackend(settings)
