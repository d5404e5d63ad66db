"""WAV (RIFF) headers for whole files and for streams of unknown length."""

from __future__ import annotations

import struct

from media_server.audio.constants import SAMPLE_WIDTH

# Streaming readers (and OpenAI's own streamed WAV) accept a maximal size.
UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """A 44-byte mono s16le header; `data_bytes=None` marks a stream of unknown length."""
    data_size = UNKNOWN_SIZE if data_bytes is None else data_bytes
    riff_size = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    byte_rate = sample_rate * SAMPLE_WIDTH
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, SAMPLE_WIDTH, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )
