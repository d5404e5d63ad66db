"""The fade-out that keeps a cut from clicking: a raised-cosine ramp down to silence.

Stopping a waveform mid-swing is a step to zero, which the ear hears as a
click. `fade_out` scales the last few milliseconds by half a cosine period,
from 1 at the first faded sample (the waveform continues where it was) to
just above 0 at the last (the silence that follows starts without a step);
its slope is zero at both ends.
"""

from __future__ import annotations

import numpy as np

from media_server.audio.pcm import Pcm

FADE_MS = 5.0


def fade_samples(rate: int, ms: float = FADE_MS) -> int:
    """How many samples a fade of `ms` milliseconds spans at `rate`."""
    return round(ms * rate / 1000)


def fade_out(pcm: Pcm, rate: int, ms: float = FADE_MS) -> Pcm:
    """A copy of `pcm` with its last `ms` milliseconds (all of it, if shorter) ramped down to silence."""
    length = min(len(pcm), fade_samples(rate, ms))
    if length == 0:
        return pcm
    ramp = 0.5 + 0.5 * np.cos(np.pi * np.arange(length) / length)
    out = pcm.copy()
    out[-length:] = np.round(pcm[-length:] * ramp).astype(np.int16)
    return out
