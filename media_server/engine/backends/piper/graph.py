"""A Piper voice's ONNX graph cut into the stages that bounded, streamed synthesis needs.

A Piper voice is one VITS graph: text encoder and stochastic duration predictor,
the expansion of per-phoneme statistics to frames, a normalizing flow, and the
HiFi-GAN waveform decoder. Run whole, one call covers a whole sentence and cannot
be interrupted. At load the graph is cut in memory (with the `onnx` package) into
three models run by onnxruntime:

- `encode`: phoneme ids -> per-phoneme prior means and log-scales, and durations in
  frames before rounding. Once per piece of text; its cost grows with the piece.
- `flow`: a range of frames of the prior sample -> the decoder's latent. The flow is
  convolutional: over any range of frames it is exact given `FLOW_CONTEXT` frames of
  context on either side.
- `decode`: latent frames -> waveform, `hop_length` samples per frame; exact over a
  window given `DECODER_CONTEXT` frames either side.

The graph's two random draws (the duration predictor's noise and the prior's) become
inputs, so the caller seeds them and the same text gives the same samples.

The cut points are found by structure (the nodes Piper's VITS export always has),
not by a voice-specific list, and a voice without them is refused with a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
from onnx.utils import Extractor

from media_server.errors import ConfigError

FLOW_CONTEXT = 32
"""Frames of context either side that make a range of the flow exact (measured: 32 gives float-rounding error)."""
DECODER_CONTEXT = 10
"""Frames of context either side that make a decoder window exact (measured: 10 gives float-rounding error)."""

Floats = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CutPoints:
    """Names of the tensors where the voice graph is cut."""

    duration_noise: str
    """The duration predictor's standard-normal draw, [1, 2, ids]."""
    prior_means: str
    prior_log_scales: str
    """Per-phoneme prior statistics, [1, channels, ids]."""
    durations: str
    """Frames per phoneme id before rounding up (length scale applied), [1, 1, ids]."""
    prior_sample: str
    """The frame-level prior sample the flow reads, [1, channels, frames]."""
    frame_mask: str
    """The frame mask the flow reads, [1, 1, frames]."""
    latent: str
    """The decoder's input, [1, channels, frames]."""
    audio: str
    """The graph's output waveform."""


@dataclass(frozen=True)
class Prior:
    """One piece of text encoded: the per-phoneme statistics and their durations."""

    means: Floats
    log_scales: Floats
    """[channels, ids]"""
    durations: Floats
    """[ids], frames before rounding"""


def find_cut_points(model: onnx.ModelProto) -> CutPoints:
    """The cut points of a Piper VITS graph; ConfigError when the graph is not shaped like one."""
    nodes = list(model.graph.node)
    producer = {output: node for node in nodes for output in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only(found: list[onnx.NodeProto], what: str) -> onnx.NodeProto:
        if len(found) != 1:
            raise ConfigError(f"PIPER_MODEL: not a Piper VITS graph ({len(found)} nodes look like {what})")
        return found[0]

    noises = [node for node in nodes if node.op_type == "RandomNormalLike"]
    duration_noise = only([n for n in noises if n.name.startswith("/dp/")], "the duration noise")
    prior_noise = only([n for n in noises if not n.name.startswith("/dp/")], "the prior noise")
    ceil = only([n for n in nodes if n.op_type == "Ceil"], "the duration rounding")
    split = only([n for n in nodes if n.op_type == "Split" and n.name == "/enc_p/Split"], "the prior statistics")
    conv_pre = only(
        [n for n in nodes if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] == "dec.conv_pre.weight"],
        "the decoder's first layer",
    )
    # prior sample = means + noise * exp(log_scales) * noise_scale: follow the noise to the Add.
    frontier, add = prior_noise.output[0], None
    for _ in range(4):
        following = consumers.get(frontier, [])
        if len(following) != 1:
            break
        if following[0].op_type == "Add":
            add = following[0]
            break
        frontier = following[0].output[0]
    if add is None:
        raise ConfigError("PIPER_MODEL: not a Piper VITS graph (no prior sample after the prior noise)")
    masking = producer.get(conv_pre.input[0])
    if masking is None or masking.op_type != "Mul":
        raise ConfigError("PIPER_MODEL: not a Piper VITS graph (the decoder input is not a masked latent)")
    return CutPoints(
        duration_noise=duration_noise.output[0],
        prior_means=split.output[0],
        prior_log_scales=split.output[1],
        durations=ceil.input[0],
        prior_sample=add.output[0],
        frame_mask=masking.input[1],
        latent=conv_pre.input[0],
        audio=model.graph.output[0].name,
    )


class VoiceStages:
    """The three stages of one voice as onnxruntime sessions (each safe to run from several threads)."""

    def __init__(self, model_path: Path, threads: int) -> None:
        model = onnx.load(str(model_path))
        self.cut = find_cut_points(model)
        inputs = {tensor.name for tensor in model.graph.input}
        self._speaker = ["sid"] if "sid" in inputs else []
        cut = self.cut
        extractor = Extractor(model)
        options = _session_options(threads)

        def session(sources: list[str], targets: list[str]) -> onnxruntime.InferenceSession:
            part = extractor.extract_model(sources + self._speaker, targets)
            return onnxruntime.InferenceSession(
                part.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
            )

        self._encoder = session(
            ["input", "input_lengths", "scales", cut.duration_noise],
            [cut.prior_means, cut.prior_log_scales, cut.durations],
        )
        self._flow = session([cut.prior_sample, cut.frame_mask], [cut.latent])
        self._decoder = session([cut.latent], [cut.audio])

    def encode(self, ids: Ids, scales: Floats, duration_noise: Floats, speaker: int | None) -> Prior:
        feeds: dict[str, np.ndarray] = {
            "input": ids[None, :],
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
            self.cut.duration_noise: duration_noise[None],
        }
        means, log_scales, durations = self._encoder.run(None, self._with_speaker(feeds, speaker))
        return Prior(means=means[0], log_scales=log_scales[0], durations=durations[0, 0])

    def flow(self, prior_sample: Floats, speaker: int | None) -> Floats:
        """The decoder latent of `prior_sample` [channels, frames]."""
        frames = prior_sample.shape[1]
        feeds = {
            self.cut.prior_sample: np.ascontiguousarray(prior_sample)[None],
            self.cut.frame_mask: np.ones((1, 1, frames), dtype=np.float32),
        }
        latent: Floats = self._flow.run(None, self._with_speaker(feeds, speaker))[0][0]
        return latent

    def decode(self, latent: Floats, speaker: int | None) -> Floats:
        """The waveform of `latent` [channels, frames], float in about [-1, 1]."""
        feeds = {self.cut.latent: np.ascontiguousarray(latent)[None]}
        audio: Floats = self._decoder.run(None, self._with_speaker(feeds, speaker))[0].reshape(-1)
        return audio

    def _with_speaker(self, feeds: dict[str, np.ndarray], speaker: int | None) -> dict[str, np.ndarray]:
        if self._speaker:
            feeds["sid"] = np.array([speaker or 0], dtype=np.int64)
        return feeds


def _session_options(threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Every run is bounded (a piece of text, a window of frames), so the arena would only
    # keep the largest run's memory forever; plain allocations are given back.
    options.enable_cpu_mem_arena = False
    return options
