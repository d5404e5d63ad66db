"""Streaming resampling of mono s16 PCM through libswresample (PyAV).

One `Resampler` per stream keeps the filter state between chunks, so chunk
joins are seamless; `flush` returns the filter's tail at the end.
"""

from __future__ import annotations

import av
import numpy as np

from media_server.audio.pcm import Pcm

_EMPTY: Pcm = np.zeros(0, dtype=np.int16)


class Resampler:
    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._resampler = (
            None if src_rate == dst_rate else av.AudioResampler(format="s16", layout="mono", rate=dst_rate)
        )

    def process(self, pcm: Pcm) -> Pcm:
        if self._resampler is None or len(pcm) == 0:
            return pcm
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.src_rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> Pcm:
        if self._resampler is None:
            return _EMPTY
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> Pcm:
        if not frames:
            return _EMPTY
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16, copy=False)
