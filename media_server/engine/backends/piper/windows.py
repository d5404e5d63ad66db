"""Where the frames of one encoded piece are cut: flow ranges and decoder windows.

Both are fixed by the piece's frame count alone, never by timing or load, so the
same text always runs through the same windows and gives the same samples. The
first window is short (first audio soon after the piece is encoded); later ones
are longer, trading the decoder's overlapped context (`DECODER_CONTEXT` frames
either side, recomputed by both neighbours) against the length of a step.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_server.engine.backends.piper.graph import DECODER_CONTEXT

FIRST_WINDOW = 20
"""Frames in a piece's first decoder window: about 0.23 s of audio, decoded in about 10 ms."""
WINDOW = 40
"""Frames in each later window: about 0.46 s of audio for 60 decoded frames (about 20 ms)."""
FLOW_CHUNK = 96
"""Frames per flow run after the first (the flow costs about a fifth of the decoder per frame)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    def widened(self, context: int, limit: int) -> Span:
        return Span(max(0, self.start - context), min(limit, self.end + context))


def decoder_windows(frames: int) -> list[Span]:
    return _spans(frames, FIRST_WINDOW, WINDOW)


def flow_spans(frames: int) -> list[Span]:
    """Flow ranges: the first covers what the first decoder window reads, then `FLOW_CHUNK` at a time."""
    return _spans(frames, FIRST_WINDOW + DECODER_CONTEXT, FLOW_CHUNK)


def _spans(frames: int, first: int, size: int) -> list[Span]:
    spans: list[Span] = []
    start, length = 0, first
    while start < frames:
        end = min(frames, start + length)
        spans.append(Span(start, end))
        start, length = end, size
    return spans
