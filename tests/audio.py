"""Decoding what the server sent, for assertions."""

from __future__ import annotations

import io

import av


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
