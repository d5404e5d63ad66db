"""One request's progress through the Qwen3-TTS step loop: its segments, its frames, and when audio is due.

A request's text is cut into segments (as Piper does: a short first clause,
then sentences), and each segment is one talker generation in the sequence's
slot, ended by the end-of-speech token or by its frame budget. The codec frames
of all segments form one stream, decoded in chunks: the first after
`first_chunk` frames, then every `chunk` frames, and whatever is left when a
segment ends. A segment's audio is kept until it ends, for the aligner that
times its words.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from media_server.engine.backends.qwen.codec import CodecInput
from media_server.engine.backends.qwen.prompt import Conditioning, SegmentPrompt
from media_server.engine.types import Pcm
from media_server.engine.words import WordSpan

MIN_SEGMENT_FRAMES = 2
"""End-of-speech is not sampled before this many frames of a segment (as upstream's min_new_tokens)."""
BASE_FRAMES = 25
FRAMES_PER_TEXT_TOKEN = 8
"""About twice the frames a text token takes to say (12.5 frames/s, 3-4 tokens/s in the supported languages)."""
MAX_SEGMENT_FRAMES = 750
"""60 s: no segment (at most a few hundred characters) takes longer to say."""

Frame = npt.NDArray[np.int64]


def frame_budget(text_tokens: int, prompt_length: int, context: int) -> int:
    """The most frames one segment may generate: adaptive to its text, and within the slot's context."""
    return max(0, min(MAX_SEGMENT_FRAMES, BASE_FRAMES + FRAMES_PER_TEXT_TOKEN * text_tokens, context - prompt_length))


@dataclass(eq=False)
class QwenSequence:
    """One open request: its slot, voice conditioning, remaining segments, random stream and frames."""

    slot: int
    conditioning: Conditioning
    segments: deque[torch.Tensor]
    """Text token ids of the segments not started yet."""
    texts: deque[tuple[str, tuple[int, ...]]]
    """The text of each segment, with where its words start in the request's text (the segment being
    spoken first, until its words are timed)."""
    generator: torch.Generator
    first_chunk: int
    chunk: int
    codes: list[Frame] = field(default_factory=list)
    """Every frame generated so far."""
    emitted: int = 0
    """Frames whose audio has been returned."""
    prompt: SegmentPrompt | None = None
    prefilled: int = 0
    """Prompt positions already run into the cache (prefill goes a chunk per step)."""
    position: int = 0
    """Where the talker writes the next frame in the slot's cache."""
    segment_frames: int = 0
    max_frames: int = 0
    finished: bool = False
    """No more frames will come."""
    done: bool = False
    """All audio has been returned."""
    closed: bool = False
    ended: bool = False
    """The segment ended in this step: once its last audio is decoded, its words are timed."""
    said: list[Pcm] = field(default_factory=list)
    """The audio of the segment being spoken, so far."""
    said_before: int = 0
    """Samples of the segments before it."""
    timed: list[WordSpan] = field(default_factory=list)
    """Words timed and not yet taken."""

    @property
    def needs_prompt(self) -> bool:
        """The next segment has not started: its prompt is to be built."""
        return not self.finished and self.prompt is None

    @property
    def prefilling(self) -> bool:
        """The segment's prompt is not all in the cache yet: no frame can be sampled."""
        return self.prompt is not None and self.prefilled < len(self.prompt.embeds)

    def start_segment(self, prompt: SegmentPrompt, max_frames: int) -> None:
        self.prompt = prompt
        self.prefilled = 0
        self.position = len(prompt.embeds)
        self.segment_frames = 0
        self.max_frames = max_frames

    def text_input(self, pad: torch.Tensor) -> torch.Tensor:
        """The text embedding fed with the frame about to be generated."""
        assert self.prompt is not None
        trailing = self.prompt.trailing
        return trailing[self.segment_frames] if self.segment_frames < len(trailing) else pad

    def take_frame(self, frame: Frame, eos: int) -> None:
        """Record a sampled frame; end the segment at end-of-speech or when its budget is spent."""
        if frame[0] == eos:
            self._end_segment()
            return
        self.codes.append(frame.copy())
        self.segment_frames += 1
        self.position += 1
        if self.segment_frames >= self.max_frames:
            self._end_segment()

    def due(self) -> CodecInput | None:
        """The frames to decode now, if a chunk is complete or the segment has ended."""
        pending = len(self.codes) - self.emitted
        threshold = self.first_chunk if self.emitted == 0 else self.chunk
        if pending == 0 or (pending < threshold and self.prompt is not None):
            return None
        frames = CodecInput(self.slot, np.stack(self.codes[self.emitted :]))
        self.emitted = len(self.codes)
        return frames

    def _end_segment(self) -> None:
        self.prompt = None
        self.ended = True
        if not self.segments:
            self.finished = True
