"""Decoding what the server sent, for assertions."""

from __future__ import annotations

import io
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext


def decoded_samples(data: bytes, container: str | None = None) -> tuple[int, int]:
    """(samples, rate) of the first audio stream in `data`, decoded with PyAV."""
    with av.open(io.BytesIO(data), mode="r", format=container) as decoded:
        stream = decoded.streams.audio[0]
        samples = 0
        for frame in decoded.decode(stream):
            samples += frame.samples
        return samples, stream.rate


def decoded_duration_s(data: bytes, container: str | None = None) -> float:
    samples, rate = decoded_samples(data, container)
    return samples / rate


def g711_pcm(data: bytes, law: str, rate: int = 8000) -> npt.NDArray[np.int16]:
    """Headerless G.711 (`law`: mulaw or alaw) decoded to 16-bit samples."""
    codec = cast(AudioCodecContext, av.CodecContext.create(f"pcm_{law}", "r"))
    codec.sample_rate = rate
    codec.layout = "mono"
    frames = codec.decode(av.Packet(data))
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.int16)
