"""The Backend protocol every speech model implements.

A backend is driven from the engine's own threads, never from the event loop.
`open` prepares one request and returns its steps: each `next()` does one unit
of model work (a segment for Piper) and returns the PCM it made, so the
scheduler can interleave requests and drop a cancelled one between steps.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Protocol

from media_server.engine.types import Pcm, SynthesisRequest, Voice


class Backend(Protocol):
    name: str

    def load(self) -> None:
        """Load weights and warm up; blocking, called once from an engine thread."""

    def voices(self) -> Sequence[Voice]:
        """The voices this backend can speak (valid after `load`)."""

    def open(self, request: SynthesisRequest, voice: Voice) -> Generator[Pcm, None, None]:
        """The steps of one request; each yields mono s16 PCM at `voice.sample_rate`."""
