"""Decoding an uploaded audio file (any format PyAV reads) to mono s16 PCM.

Decoding is CPU work in proportion to the file's samples, not its bytes (a
small file of silence at a high rate and channel count holds minutes of
samples): callers run it off the event loop. The result is bounded: at most
`MAX_DECODED_S` seconds, at most `MAX_DECODED_RATE` samples a second.
"""

from __future__ import annotations

import io

import av
import numpy as np

from media_server.audio.pcm import Pcm
from media_server.errors import InvalidRequest

MAX_DECODED_S = 60.0
MAX_DECODED_RATE = 48000


def decode_audio(data: bytes, field: str = "reference_audio") -> tuple[Pcm, int]:
    """(mono s16 PCM, sample rate) of the first audio stream in `data`, resampled down to
    `MAX_DECODED_RATE` when above it; InvalidRequest naming `field`."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidRequest(f"{field}: the file has no audio stream")
            stream = container.streams.audio[0]
            rate = min(stream.rate, MAX_DECODED_RATE)
            to_mono = av.AudioResampler(format="s16", layout="mono", rate=rate)
            parts: list[Pcm] = []
            samples = 0
            for frame in container.decode(stream):
                for converted in to_mono.resample(frame):
                    part = converted.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    parts.append(part)
                    samples += len(part)
                if samples > MAX_DECODED_S * rate:
                    raise InvalidRequest(f"{field}: longer than {MAX_DECODED_S:.0f} s")
    except av.FFmpegError as exc:
        raise InvalidRequest(f"{field}: not a readable audio file ({exc})") from exc
    if not parts:
        raise InvalidRequest(f"{field}: the file holds no audio")
    return np.concatenate(parts), rate
