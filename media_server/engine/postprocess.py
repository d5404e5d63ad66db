"""Per-request audio finishing, run in the engine's worker threads after each step.

The first chunk loses its leading silence (that is time to first audio); every
chunk holds back its trailing silence until it knows whether more audio
follows, so pauses between sentences stay while the utterance's final silence
is dropped without waiting for anything. A fixed gain per voice brings every
voice and backend to one loudness; speed is changed here only for backends
that cannot do it natively. Each operation leaves the samples of a chunk join
untouched, so joins stay seamless.
"""

from __future__ import annotations

import numpy as np

from media_server.audio.effects import apply_gain, change_speed, speech_bounds
from media_server.audio.pcm import Pcm

EMPTY: Pcm = np.zeros(0, dtype=np.int16)


class PostProcessor:
    def __init__(self, sample_rate: int, gain: float, speed: float = 1.0) -> None:
        self._rate = sample_rate
        self._gain = gain
        self._speed = speed
        self._started = False
        self._held = EMPTY

    def process(self, pcm: Pcm) -> Pcm:
        """The part of `pcm` that can be sent now; trailing silence waits for the next chunk."""
        if not len(pcm):
            return pcm
        pcm = np.concatenate([self._held, pcm]) if len(self._held) else pcm
        # The detector finds where speech starts; after that, energy alone finds trailing silence.
        bounds = speech_bounds(pcm, self._rate, vad=not self._started)
        if bounds is None:
            self._held = pcm if self._started else EMPTY
            return EMPTY
        start = 0 if self._started else bounds[0]
        self._started = True
        self._held = pcm[bounds[1] :]
        return self._finish(pcm[start : bounds[1]])

    def _finish(self, pcm: Pcm) -> Pcm:
        if not len(pcm):
            return pcm
        if self._speed != 1.0:
            pcm = change_speed(pcm, self._rate, self._speed)
        return apply_gain(pcm, self._gain)
