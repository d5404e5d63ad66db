"""Streaming audio encoders, one per response format, and the lookup by name.

An encoder turns mono s16 PCM chunks into bytes as they come: `header` first,
`encode` per chunk, `finish` at the end. Formats whose container needs the
total length up front are written with the streaming convention instead
(a WAV header with the maximal size, as OpenAI's streamed WAV does).
"""

from __future__ import annotations

from typing import Protocol

from media_server.audio.pcm import Pcm
from media_server.audio.wav import wav_header
from media_server.errors import UnsupportedFormat


class StreamEncoder(Protocol):
    content_type: str

    def header(self) -> bytes: ...

    def encode(self, pcm: Pcm) -> bytes: ...

    def finish(self) -> bytes: ...


class PcmEncoder:
    content_type = "audio/pcm"

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def header(self) -> bytes:
        return b""

    def encode(self, pcm: Pcm) -> bytes:
        return pcm.astype("<i2", copy=False).tobytes()

    def finish(self) -> bytes:
        return b""


class WavEncoder(PcmEncoder):
    content_type = "audio/wav"

    def header(self) -> bytes:
        return wav_header(self.sample_rate)


ENCODERS: dict[str, type[PcmEncoder]] = {"pcm": PcmEncoder, "wav": WavEncoder}


def get_encoder(name: str, sample_rate: int) -> StreamEncoder:
    factory = ENCODERS.get(name)
    if factory is None:
        raise UnsupportedFormat(
            f"response_format: {name!r} is not supported; use one of {', '.join(ENCODERS)}"
        )
    return factory(sample_rate)
