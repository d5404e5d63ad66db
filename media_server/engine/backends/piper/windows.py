"""Where the frames of one encoded piece are cut: flow ranges and decoder windows.

Both are fixed by the piece's frame count and whether it opens its request,
never by timing or load, so the same request always runs through the same
windows and gives the same samples. A request's first piece starts with a short
window (first audio soon after it is encoded), and its first flow range covers
the first two windows, so the second audio needs one decoder step only. Later
windows are longer, trading the decoder's overlapped context
(`DECODER_CONTEXT` frames either side, recomputed by both neighbours) against
the length of a step.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_server.engine.backends.piper.graph import DECODER_CONTEXT

FIRST_WINDOW = 24
"""Frames in a request's first decoder window: about 0.28 s of audio, decoded in about 11 ms."""
WINDOW = 56
"""Frames in each later window: about 0.65 s of audio for 76 decoded frames (about 25 ms)."""
FLOW_WHOLE = 128
"""A piece of at most this many frames goes through the flow in one run (about 10 ms), with no context to redo."""
FLOW_CHUNK = 192
"""Frames per flow run in a longer piece (the flow costs about a fifth of the decoder per frame)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    def widened(self, context: int, limit: int) -> Span:
        return Span(max(0, self.start - context), min(limit, self.end + context))


def decoder_windows(frames: int, opening: bool) -> list[Span]:
    """The decoder windows of a piece of `frames`; `opening`: the piece opens its request."""
    return _spans(frames, FIRST_WINDOW if opening else WINDOW, WINDOW)


def flow_spans(frames: int, opening: bool) -> list[Span]:
    """Flow ranges: a short piece whole; else first what the first two decoder windows read, then chunks."""
    if frames <= FLOW_WHOLE:
        return _spans(frames, frames, frames)
    first = FIRST_WINDOW + WINDOW + DECODER_CONTEXT if opening else FLOW_CHUNK
    return _spans(frames, first, FLOW_CHUNK)


def _spans(frames: int, first: int, size: int) -> list[Span]:
    spans: list[Span] = []
    start, length = 0, first
    while start < frames:
        end = min(frames, start + length)
        spans.append(Span(start, end))
        start, length = end, size
    return spans
