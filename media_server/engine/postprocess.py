"""Per-request audio finishing, run in the engine's worker threads after each step.

The first chunk loses its leading silence (that is time to first audio); every
chunk holds back its trailing silence until it knows whether more audio
follows, so pauses between sentences stay while the utterance's final silence
is dropped without waiting for anything. A fixed gain per voice brings every
voice and backend to one loudness; speed is changed here only for backends
that cannot do it natively. Each operation leaves the samples of a chunk join
untouched, so joins stay seamless.

It also keeps where the backend's samples went (`emitted_until`,
`output_position`), so word timings follow the audio actually sent.
"""

from __future__ import annotations

import bisect

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
        self._seen = 0
        """Backend samples received so far."""
        self._lead = 0
        """Backend samples trimmed before the first one sent."""
        self._raw_starts: list[int] = []
        self._pieces: list[tuple[int, int, int, int]] = []
        """Each piece sent: its first backend sample, how many, where it starts in the output, how long it is there."""
        self._out = 0
        self.emitted_until = 0
        """Backend samples accounted for in the audio sent: up to the last one sent (trimmed ones included)."""

    def process(self, pcm: Pcm) -> Pcm:
        """The part of `pcm` that can be sent now; trailing silence waits for the next chunk."""
        if not len(pcm):
            return pcm
        base = self._seen - len(self._held)
        self._seen += len(pcm)
        pcm = np.concatenate([self._held, pcm]) if len(self._held) else pcm
        # The detector finds where speech starts; after that, energy alone finds trailing silence.
        bounds = speech_bounds(pcm, self._rate, vad=not self._started)
        if bounds is None:
            self._held = pcm if self._started else EMPTY
            return EMPTY
        start = 0 if self._started else bounds[0]
        if not self._started:
            self._lead = base + start
        self._started = True
        self._held = pcm[bounds[1] :]
        finished = self._finish(pcm[start : bounds[1]])
        if len(finished):
            self._raw_starts.append(base + start)
            self._pieces.append((base + start, bounds[1] - start, self._out, len(finished)))
            self._out += len(finished)
            self.emitted_until = base + bounds[1]
        return finished

    @property
    def received_until(self) -> int:
        """Backend samples received so far: those past `emitted_until` are held silence, sent or dropped later."""
        return self._seen

    @property
    def sent_samples(self) -> int:
        """Samples of audio sent so far."""
        return self._out

    def output_position(self, sample: int) -> float:
        """Where the backend's `sample` is in the audio sent: trimmed lead at 0, stretched with the audio."""
        if sample <= self._lead or not self._pieces:
            return 0.0
        index = max(0, bisect.bisect_right(self._raw_starts, sample) - 1)
        raw_start, raw_length, out_start, out_length = self._pieces[index]
        if sample >= raw_start + raw_length and index == len(self._pieces) - 1:
            return out_start + out_length + (sample - raw_start - raw_length) / self._speed
        return out_start + min(sample - raw_start, raw_length) * out_length / raw_length

    def _finish(self, pcm: Pcm) -> Pcm:
        if not len(pcm):
            return pcm
        if self._speed != 1.0:
            pcm = change_speed(pcm, self._rate, self._speed)
        return apply_gain(pcm, self._gain)
