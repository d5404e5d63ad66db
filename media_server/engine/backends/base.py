"""The Backend protocol every speech model implements.

A backend is driven only from the engine's worker threads, never from the
event loop, and never from two threads at once unless it says so (`workers`).
The scheduler `open`s a sequence for each admitted request, then calls `step`
on batches of open sequences: each step does one unit of model work for every
sequence in the batch (a bounded run of Piper's stages, one codec frame for an
autoregressive model) and returns the PCM each one made. A sequence that is
finished returns None; the scheduler then `close`s it, as it does at once for
a cancelled one, freeing its slot at the step boundary. After each step the
scheduler asks for the words the backend has timed since (`words`): spans of
the request's text with the samples of its output that say them, measured
(Piper's durations) or estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

from media_server.engine.types import Pcm, SynthesisRequest, Voice
from media_server.engine.words import WordSpan

S = TypeVar("S")


class Backend(Protocol[S]):
    name: str
    max_batch: int
    """How many sequences one `step` may advance together."""
    max_sequences: int | None
    """How many sequences may be open at once (None: no limit)."""
    native_speed: bool
    """Whether the backend honours `request.speed` itself (else the engine stretches its audio)."""
    deterministic: bool
    """Whether the same request always gives the same samples (then its audio may be cached)."""

    def load(self) -> None:
        """Load weights and warm up; blocking, called once from a worker thread."""

    def unload(self) -> None:
        """Free the weights (the engine was idle); `load` brings them back."""

    def voices(self) -> Sequence[Voice]:
        """The voices this backend can speak (valid after `load`)."""

    def open(self, request: SynthesisRequest, voice: Voice) -> S:
        """Prepare one request's sequence."""

    def step(self, sequences: list[S]) -> list[Pcm | None]:
        """Advance each sequence by one unit: its new PCM (maybe empty), or None when it is done."""

    def lead_s(self, sequence: S) -> float:
        """Step time the sequence needs before its next audio, estimated (the scheduler starts it that early)."""

    def words(self, sequence: S) -> list[WordSpan]:
        """The words of the request's text timed since the last call, in order (samples counted from the
        sequence's first); asked after every step. A word's start is released with audio once both are known."""

    def close(self, sequence: S) -> None:
        """Release what the sequence holds."""


@runtime_checkable
class VoiceCloner(Protocol):
    """A backend that can clone voices from reference audio (blocking model work)."""

    def create_voice(self, reference_pcm: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        """A new voice id usable everywhere (the same one again for the same reference)."""

    def delete_voice(self, voice_id: str) -> None: ...
