"""Post-processing of synthesized speech: silence trim, tempo and loudness.

Every function takes mono s16 PCM (`Pcm`) at a given sample rate and never
changes it in place, so cached (read-only) audio can be handed to them; where
there is nothing to do the input object itself comes back.

- `speech_bounds` finds where speech starts and ends in a chunk: the WebRTC
  voice activity detector says whether there is speech, then the cut is
  walked out to where the signal's energy starts and ends, leaving `pad_ms`
  of silence (`vad=False`: energy alone, once speech is known to have
  started). The engine's post-processor trims leading silence and holds a
  chunk's trailing silence back with it.
- `change_speed` changes tempo without changing pitch (Rubber Band, through
  the `rubberband` command-line tool).
- `measure_loudness` / `loudness_gain` / `apply_gain` bring voices and
  backends to one level. Loudness is integrated loudness as in ITU-R BS.1770
  (K-weighting, 400 ms blocks, absolute and relative gates),
  which is what ears compare; plain RMS would rate a bright voice quieter than
  it sounds. The K-weighting is applied in the frequency domain (the filter's
  magnitude response on each block's spectrum), which needs no IIR loop.
  Gains never push a sample past `PEAK_CEILING`: a memoryless soft limiter,
  so a chunked stream gets the same samples as the whole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyrubberband
import webrtcvad

from media_server.audio.pcm import Pcm
from media_server.audio.resample import Resampler

__all__ = [
    "PEAK_CEILING",
    "TARGET_LUFS",
    "apply_gain",
    "change_speed",
    "loudness_gain",
    "measure_loudness",
    "speech_bounds",
]

TARGET_LUFS = -23.0
"""EBU R128 programme level: speech there rarely peaks above -3 dBFS, so PEAK_CEILING seldom cuts a gain."""
PEAK_CEILING = 0.89
"""Largest sample magnitude a gain may produce, as a fraction of full scale (-1 dBFS)."""
LIMITER_KNEE = 0.7
"""Fraction of the ceiling above which `apply_gain` starts bending samples toward it."""

_FULL_SCALE = 32768.0
_VAD_RATES = (8000, 16000, 32000, 48000)
_VAD_RATE = 16000
_VAD_FRAME_MS = 10
_ENERGY_WINDOW_MS = 5
# Energy below the loudest window by this much (or below an absolute floor) counts as silence.
_ENERGY_RANGE_DB = 45.0
_ENERGY_FLOOR = 20.0
_BLOCK_S, _HOP_S = 0.4, 0.1
_ABSOLUTE_GATE_LUFS, _RELATIVE_GATE_LU = -70.0, -10.0

Floats = npt.NDArray[np.float64]
Span = tuple[int, int]


def speech_bounds(pcm: Pcm, rate: int, pad_ms: float = 15.0, aggressiveness: int = 2, vad: bool = True) -> Span | None:
    """The range [first, last) of the speech in `pcm` with `pad_ms` either side; None without speech.

    `vad=False` decides by the energy envelope alone: cheaper (no resampling, no
    detector), and enough where the audio is known to be clean synthesized speech
    whose start has already been found.
    """
    span = _speech_span(pcm, rate, aggressiveness) if vad else _loud_span(pcm, rate)
    if span is None:
        return None
    start, end = _energy_span(pcm, rate, *span)
    pad = round(pad_ms * rate / 1000)
    return max(0, start - pad), min(len(pcm), end + pad)


def _speech_span(pcm: Pcm, rate: int, aggressiveness: int) -> Span | None:
    """Sample range [start, end) from the first to the last 10 ms frame the VAD calls speech."""
    vad_rate = rate if rate in _VAD_RATES else _VAD_RATE
    audio = pcm
    if vad_rate != rate:
        resampler = Resampler(rate, vad_rate)
        audio = np.concatenate([resampler.process(pcm), resampler.flush()])
    frame = vad_rate * _VAD_FRAME_MS // 1000
    vad = webrtcvad.Vad(aggressiveness)
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    voiced = [i for i, samples in enumerate(frames) if vad.is_speech(samples.tobytes(), vad_rate)]
    if not voiced:
        return None
    scale = rate / vad_rate
    return round(voiced[0] * frame * scale), min(len(pcm), round((voiced[-1] + 1) * frame * scale))


def _loud_span(pcm: Pcm, rate: int) -> Span | None:
    """From the first to the last window whose energy is above the silence threshold; None if none is."""
    rms = _window_rms(pcm, rate)
    if not len(rms):
        return None
    loud = np.flatnonzero(rms > _silence_threshold(rms))
    if not len(loud):
        return None
    window = max(1, rate * _ENERGY_WINDOW_MS // 1000)
    return int(loud[0]) * window, min(len(pcm), (int(loud[-1]) + 1) * window)


def _window_rms(pcm: Pcm, rate: int) -> Floats:
    window = max(1, rate * _ENERGY_WINDOW_MS // 1000)
    count = len(pcm) // window
    frames = pcm[: count * window].astype(np.float64).reshape(count, window)
    rms: Floats = np.sqrt(np.mean(frames**2, axis=1))
    return rms


def _silence_threshold(rms: Floats) -> float:
    return max(_ENERGY_FLOOR, float(rms.max()) * 10 ** (-_ENERGY_RANGE_DB / 20))


def _energy_span(pcm: Pcm, rate: int, start: int, end: int) -> Span:
    """[start, end) widened to the outermost windows whose energy is above the silence threshold.

    The VAD decides *whether* there is speech; its 10 ms frames and onset delay
    make it late on soft onsets (an "h", a breath), so the exact edges come from
    the energy envelope, searched outward from the VAD's span.
    """
    window = max(1, rate * _ENERGY_WINDOW_MS // 1000)
    rms = _window_rms(pcm, rate)
    count = len(rms)
    if count == 0:
        return start, end
    loud = rms > _silence_threshold(rms)
    first = min(start // window, count - 1)
    while first > 0 and loud[first - 1]:
        first -= 1
    while first < count - 1 and not loud[first] and first * window < end:
        first += 1
    last = max(min((end - 1) // window, count - 1), first)
    while last < count - 1 and loud[last + 1]:
        last += 1
    while last > first and not loud[last]:
        last -= 1
    return first * window, min(len(pcm), (last + 1) * window)


def change_speed(pcm: Pcm, rate: int, speed: float) -> Pcm:
    """`pcm` played `speed` times faster (2.0: half as long) at the same pitch; speed 1.0 returns `pcm`."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if speed == 1.0 or len(pcm) == 0:
        return pcm
    # Rubber Band's "fine" (R3) engine: fewer phasing artifacts on speech than the default R2.
    samples = pcm.astype(np.float32) / _FULL_SCALE
    stretched = pyrubberband.time_stretch(samples, rate, speed, rbargs={"--fine": ""})
    return _to_pcm(np.asarray(stretched, dtype=np.float64).reshape(-1) * _FULL_SCALE)


def measure_loudness(pcm: Pcm, rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770); -inf for silence or audio shorter than one millisecond."""
    signal = pcm.astype(np.float64) / _FULL_SCALE
    block = min(len(signal), round(_BLOCK_S * rate))
    if block < rate // 1000:
        return -math.inf
    hop = round(_HOP_S * rate)
    blocks = np.lib.stride_tricks.sliding_window_view(signal, block)[::hop]
    spectrum = np.abs(np.fft.rfft(blocks, axis=1)) ** 2
    weights = np.full(spectrum.shape[1], 2.0)
    weights[0] = 1.0
    if block % 2 == 0:
        weights[-1] = 1.0
    # Parseval: mean square of the K-weighted block from its weighted power spectrum.
    power = spectrum @ (weights * _k_weighting(np.fft.rfftfreq(block, 1 / rate), rate)) / block**2
    loudness = -0.691 + 10 * np.log10(np.maximum(power, 1e-20))
    gated = power[loudness > _ABSOLUTE_GATE_LUFS]
    if len(gated) == 0:
        return -math.inf
    relative_gate = -0.691 + 10 * math.log10(float(gated.mean())) + _RELATIVE_GATE_LU
    gated = power[(loudness > _ABSOLUTE_GATE_LUFS) & (loudness > relative_gate)]
    return -0.691 + 10 * math.log10(float(gated.mean()))


def _k_weighting(freqs: npt.NDArray[np.floating[Any]], rate: int) -> Floats:
    """|H(f)|^2 of the BS.1770 K-weighting filter (a high shelf, then a high pass) at `rate`.

    The biquads are designed for the rate with the parameters that reproduce
    BS.1770's published 48 kHz coefficients (as pyloudnorm does).
    """
    z_inv = np.exp(-2j * np.pi * freqs / rate)
    response = np.ones_like(z_inv)
    for b, a in (
        _high_shelf(rate, 4.0, 1 / math.sqrt(2), 1500.0),
        _high_pass(rate, 0.5003270373238773, 38.13547087602444),
    ):
        response *= (b[0] + b[1] * z_inv + b[2] * z_inv**2) / (a[0] + a[1] * z_inv + a[2] * z_inv**2)
    power: Floats = np.abs(response) ** 2
    return power


Biquad = tuple[tuple[float, float, float], tuple[float, float, float]]


def _high_shelf(rate: int, gain_db: float, q: float, fc: float) -> Biquad:
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * fc / rate
    cos, alpha, root = math.cos(w0), math.sin(w0) / (2 * q), math.sqrt(a)
    return (
        (
            a * ((a + 1) + (a - 1) * cos + 2 * root * alpha),
            -2 * a * ((a - 1) + (a + 1) * cos),
            a * ((a + 1) + (a - 1) * cos - 2 * root * alpha),
        ),
        (
            (a + 1) - (a - 1) * cos + 2 * root * alpha,
            2 * ((a - 1) - (a + 1) * cos),
            (a + 1) - (a - 1) * cos - 2 * root * alpha,
        ),
    )


def _high_pass(rate: int, q: float, fc: float) -> Biquad:
    w0 = 2 * math.pi * fc / rate
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    return ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2), (1 + alpha, -2 * cos, 1 - alpha)


def loudness_gain(pcm: Pcm, rate: int, target_lufs: float = TARGET_LUFS) -> float:
    """The linear gain that brings `pcm` to `target_lufs` (1.0 for silence)."""
    loudness = measure_loudness(pcm, rate)
    if math.isinf(loudness):
        return 1.0
    return 10 ** ((target_lufs - loudness) / 20)


def apply_gain(pcm: Pcm, gain: float, ceiling: float = PEAK_CEILING) -> Pcm:
    """`pcm` scaled by `gain`, samples above `LIMITER_KNEE` of `ceiling` bent smoothly toward `ceiling`.

    The limiter works sample by sample (no look-ahead, no state), so audio gets the
    same samples however it is cut into chunks.
    """
    knee = LIMITER_KNEE * ceiling * _FULL_SCALE
    peak = int(np.abs(pcm.astype(np.int32)).max(initial=0))
    if gain == 1.0 and peak <= knee:
        return pcm
    scaled = pcm.astype(np.float64) * gain
    magnitude = np.abs(scaled)
    over = magnitude > knee
    if over.any():
        room = math.floor(ceiling * _FULL_SCALE) - knee
        magnitude[over] = knee + room * np.tanh((magnitude[over] - knee) / room)
    return _to_pcm(np.copysign(magnitude, scaled))


def _to_pcm(samples: Floats) -> Pcm:
    pcm: Pcm = np.clip(np.round(samples), -_FULL_SCALE, _FULL_SCALE - 1).astype(np.int16)
    return pcm
