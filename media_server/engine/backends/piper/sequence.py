"""One request's way through the voice's stages, as a series of bounded units of work.

The text's segments are phonemized one at a time into pieces (`pieces.py`); each
piece is encoded once (`encode`), its frames are sampled from the prior, run through
the flow a range at a time (`flow`) and decoded a window at a time (`decode`, which
makes audio). `next_unit` says what the next unit is and how big, so the backend can
decide whether it still fits the step's budget; `run_next` runs it. Encoding a piece
gives the frames of each of its phoneme ids, so it also times the piece's words
(`timed`): exactly the frames the decoder will voice them in.

Everything random is drawn from a generator seeded by the piece's phoneme ids and the
request's seed, and durations are rounded by the piece alone: the samples depend on
the text and parameters, never on timing.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from piper import PiperVoice

from media_server.engine.backends.piper.alignment import NO_WORD, WordPhonemes
from media_server.engine.backends.piper.graph import DECODER_CONTEXT, FLOW_CONTEXT, Floats, Ids, VoiceStages
from media_server.engine.backends.piper.pieces import (
    FIRST_PIECE_IDS,
    IDS_PER_CHAR,
    MAX_PIECE_IDS,
    Piece,
    phoneme_pieces,
)
from media_server.engine.backends.piper.windows import WINDOW, Span, decoder_windows, flow_spans
from media_server.engine.words import WordSpan

UnitKind = Literal["encode", "flow", "decode"]


@dataclass(frozen=True)
class Unit:
    kind: UnitKind
    size: int
    """Phoneme ids encoded, or frames run through the flow or the decoder (context included)."""


@dataclass(frozen=True)
class Voicing:
    """How a request is spoken: the voice's scales, its speaker, the request's speed and seed."""

    noise_scale: float
    length_scale: float
    noise_w: float
    speaker: int | None
    hop_length: int
    """Samples per frame."""
    speed: float = 1.0
    seed: int | None = None

    def scales(self) -> Floats:
        return np.array([self.noise_scale, self.length_scale, self.noise_w], dtype=np.float32)


@dataclass
class _Piece:
    """An encoded piece: its prior sample, the latent the flow has made so far, what is left to run."""

    prior_sample: Floats
    latent: Floats
    flows: deque[Span]
    windows: deque[Span]
    flowed: int = 0

    @property
    def frames(self) -> int:
        return int(self.prior_sample.shape[1])

    def next_unit(self) -> Unit | None:
        if not self.windows:
            return None
        needed = min(self.frames, self.windows[0].end + DECODER_CONTEXT)
        if self.flowed < needed:
            return Unit("flow", self.flows[0].widened(FLOW_CONTEXT, self.frames).frames)
        return Unit("decode", self.windows[0].widened(DECODER_CONTEXT, self.frames).frames)


@dataclass
class PiperSequence:
    """What is left of one request: segments to phonemize, pieces to encode, the piece being voiced."""

    voicing: Voicing
    segments: deque[tuple[str, tuple[int, ...]]]
    """Segments of the request's text, each with where its words start in the text."""
    phonemes: WordPhonemes
    pieces: deque[Piece] = field(default_factory=deque)
    piece: _Piece | None = None
    started: bool = False
    """Whether the request's first piece has been encoded."""
    spoke: bool = False
    """Whether a decoder window has made audio yet."""
    frames: int = 0
    """Frames of the pieces encoded so far."""
    timed: list[WordSpan] = field(default_factory=list)
    """Words timed by encoding and not yet taken."""

    def next_unit(self, voice: PiperVoice) -> Unit | None:
        """The next unit of work (phonemizing the next segment first if that is needed to know it)."""
        if self.piece is not None:
            unit = self.piece.next_unit()
            if unit is not None:
                return unit
            self.piece = None
        while not self.pieces and self.segments:
            first = None if self.started else FIRST_PIECE_IDS
            text, starts = self.segments.popleft()
            self.pieces.extend(phoneme_pieces(voice, text, starts, self.phonemes, first_max_ids=first))
        return Unit("encode", len(self.pieces[0].ids)) if self.pieces else None

    def units_to_audio(self) -> list[Unit]:
        """The units up to and including the next one that makes audio (sizes of pieces not yet encoded guessed)."""
        piece = self.piece
        if piece is not None and piece.windows:
            window = piece.windows[0].widened(DECODER_CONTEXT, piece.frames)
            decode = Unit("decode", window.frames)
            if piece.flowed < min(piece.frames, piece.windows[0].end + DECODER_CONTEXT):
                return [Unit("flow", piece.flows[0].widened(FLOW_CONTEXT, piece.frames).frames), decode]
            return [decode]
        if not self.pieces and not self.segments:
            return []
        ids = len(self.pieces[0].ids) if self.pieces else min(MAX_PIECE_IDS, IDS_PER_CHAR * len(self.segments[0][0]))
        frames = WINDOW + 2 * DECODER_CONTEXT
        return [Unit("encode", ids), Unit("flow", frames + 2 * FLOW_CONTEXT), Unit("decode", frames)]

    def run_next(self, stages: VoiceStages) -> Floats | None:
        """Run the unit `next_unit` announced; the audio it made, if it was a decoder window."""
        piece = self.piece
        if piece is None:
            self.piece = self._encode(stages, self.pieces.popleft(), opening=not self.started)
            self.started = True
            return None
        window = piece.windows[0]
        if piece.flowed < min(piece.frames, window.end + DECODER_CONTEXT):
            span = piece.flows.popleft()
            wide = span.widened(FLOW_CONTEXT, piece.frames)
            latent = stages.flow(piece.prior_sample[:, wide.start : wide.end], self.voicing.speaker)
            offset = span.start - wide.start
            piece.latent[:, span.start : span.end] = latent[:, offset : offset + span.frames]
            piece.flowed = span.end
            return None
        piece.windows.popleft()
        self.spoke = True
        wide = window.widened(DECODER_CONTEXT, piece.frames)
        audio = stages.decode(piece.latent[:, wide.start : wide.end], self.voicing.speaker)
        hop = len(audio) // wide.frames
        offset = (window.start - wide.start) * hop
        return audio[offset : offset + window.frames * hop]

    def _encode(self, stages: VoiceStages, piece: Piece, opening: bool) -> _Piece:
        voicing = self.voicing
        ids = piece.ids
        rng = np.random.default_rng(_entropy(ids, voicing.seed))
        duration_noise = rng.standard_normal((2, len(ids)), dtype=np.float32)
        prior = stages.encode(ids, voicing.scales(), duration_noise, voicing.speaker)
        durations = frame_counts(prior.durations, voicing.speed)
        frames = int(durations.sum())
        self._time_words(piece, durations)
        means = np.repeat(prior.means, durations, axis=1)
        scales = np.exp(np.repeat(prior.log_scales, durations, axis=1))
        noise = rng.standard_normal(means.shape, dtype=np.float32)
        sample = (means + noise * scales * np.float32(voicing.noise_scale)).astype(np.float32)
        return _Piece(
            prior_sample=sample,
            latent=np.empty_like(sample),
            flows=deque(flow_spans(frames, opening)),
            windows=deque(decoder_windows(frames, opening)),
        )

    def _time_words(self, piece: Piece, durations: np.ndarray) -> None:
        """Time the piece's words by the frames of their ids; the piece's audio follows the frames before it."""
        ends = np.cumsum(durations)
        starts = ends - durations
        hop = self.voicing.hop_length
        owners = np.asarray(piece.owners)
        for owner in sorted(set(piece.owners) - {NO_WORD}):
            said = owners == owner
            first, last = int(starts[said].min()), int(ends[said].max())
            chars = piece.words[owner]
            self.timed.append(WordSpan(chars[0], chars[1], (self.frames + first) * hop, (self.frames + last) * hop))
        self.frames += int(ends[-1]) if len(ends) else 0


def frame_counts(durations: Floats, speed: float) -> np.ndarray:
    """Whole frames per phoneme id: the voice's own rounding up, then `speed` applied exactly.

    At speed 1 this is what Piper does. Scaling the rounded durations by 1/speed and
    rounding their running sum keeps the total exactly proportional (Piper's own length
    scale is rounded up per phoneme, so asking it for twice as fast gives about 1.55x).
    """
    counts = np.ceil(durations).astype(np.int64)
    if speed == 1.0:
        return counts
    ends = np.floor(np.cumsum(counts / speed) + 0.5).astype(np.int64)
    return np.diff(ends, prepend=0)


def _entropy(ids: Ids, seed: int | None) -> list[int]:
    key = zlib.crc32(ids.tobytes())
    return [key] if seed is None else [key, 1, seed & 0xFFFFFFFFFFFFFFFF]
