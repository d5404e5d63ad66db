"""Streaming audio encoders, one per response format, and the lookup by name.

An encoder turns mono s16 PCM chunks into bytes as they come: `header` first,
`encode` per chunk, `finish` at the end. Compressed formats go through PyAV
(libopus, LAME, FLAC, AAC and G.711 mu-law and a-law are bundled with it), muxed into a
streamable container whose bytes are handed out after every chunk: Ogg pages
are cut every 20 ms so Opus leaves as soon as it is encoded. WAV streams use
the maximal-size header convention (as OpenAI's streamed WAV does).

Encoders are not thread-safe but need not run on the event loop: callers may
run `encode` in a worker thread, one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream

from media_server.audio.pcm import Pcm
from media_server.audio.wav import wav_header
from media_server.errors import UnsupportedFormat


class StreamEncoder(Protocol):
    content_type: str
    sample_rate: int
    costly: bool
    """Whether encoding a chunk takes long enough to be done off the event loop (a compressing codec)."""

    def header(self) -> bytes: ...

    def encode(self, pcm: Pcm) -> bytes: ...

    def finish(self) -> bytes: ...


class PcmEncoder:
    """Raw s16le samples."""

    content_type = "audio/pcm"
    sample_type = "<i2"
    costly = False

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def header(self) -> bytes:
        return b""

    def encode(self, pcm: Pcm) -> bytes:
        return pcm.astype(self.sample_type, copy=False).tobytes()

    def finish(self) -> bytes:
        return b""


class WavEncoder(PcmEncoder):
    content_type = "audio/wav"

    def header(self) -> bytes:
        return wav_header(self.sample_rate)


class L16Encoder(PcmEncoder):
    """Raw s16 samples in network byte order (big-endian), as RTP's L16 payload (RFC 3551) carries them."""

    content_type = "audio/L16"
    sample_type = ">i2"


class _ByteSink:
    """The write-only file PyAV muxes into; its bytes are taken after each chunk."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class AvEncoder:
    """A PyAV codec in a streamable container."""

    costly = True

    def __init__(
        self, container: str, codec: str, content_type: str, sample_rate: int, options: dict[str, str]
    ) -> None:
        self.content_type = content_type
        self.sample_rate = sample_rate
        self._sink = _ByteSink()
        self._container = av.open(self._sink, mode="w", format=container, options=options)
        self._stream = cast(AudioStream, self._container.add_stream(codec, rate=sample_rate, layout="mono"))
        formats = self._stream.codec_context.codec.audio_formats or []
        sample_format = formats[0].name if formats else "s16"
        self._convert = av.AudioResampler(format=sample_format, layout="mono", rate=sample_rate)

    def header(self) -> bytes:
        return b""

    def encode(self, pcm: Pcm) -> bytes:
        if len(pcm):
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            for converted in self._convert.resample(frame):
                self._mux(converted)
        return self._sink.take()

    def finish(self) -> bytes:
        for converted in self._convert.resample(None):
            self._mux(converted)
        self._mux(None)
        self._container.close()
        return self._sink.take()

    def _mux(self, frame: av.AudioFrame | None) -> None:
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


class G711Encoder:
    """Headerless G.711, one byte per sample (telephony): `codec` is PyAV's pcm_mulaw or pcm_alaw."""

    content_type = "audio/basic"
    codec = "pcm_mulaw"
    costly = False

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        codec = av.CodecContext.create(self.codec, "w")
        assert isinstance(codec, AudioCodecContext)
        self._codec = codec
        self._codec.sample_rate = sample_rate
        self._codec.layout = "mono"
        self._codec.format = "s16"

    def header(self) -> bytes:
        return b""

    def encode(self, pcm: Pcm) -> bytes:
        if not len(pcm):
            return b""
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        return b"".join(bytes(packet) for packet in self._codec.encode(frame))

    def finish(self) -> bytes:
        return b""


class MulawEncoder(G711Encoder):
    """G.711 mu-law (North America, Japan)."""


class AlawEncoder(G711Encoder):
    """G.711 A-law (telephony outside North America and Japan)."""

    content_type = "audio/x-alaw-basic"
    codec = "pcm_alaw"


@dataclass(frozen=True)
class AudioFormat:
    """A response format: how to build its encoder and which rates it allows."""

    name: str
    content_type: str
    build: Callable[[int], StreamEncoder]
    rates: frozenset[int] | None = None

    def encoder(self, sample_rate: int) -> StreamEncoder:
        if self.rates is not None and sample_rate not in self.rates:
            allowed = ", ".join(str(rate) for rate in sorted(self.rates))
            raise UnsupportedFormat(f"sample_rate: {self.name} supports {allowed} Hz, not {sample_rate}")
        return self.build(sample_rate)


def _av(container: str, codec: str, content_type: str, **options: str) -> Callable[[int], StreamEncoder]:
    return lambda rate: AvEncoder(container, codec, content_type, rate, options)


OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})
MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
FORMATS: dict[str, AudioFormat] = {
    "pcm": AudioFormat("pcm", "audio/pcm", PcmEncoder),
    "wav": AudioFormat("wav", "audio/wav", WavEncoder),
    "mulaw": AudioFormat("mulaw", "audio/basic", MulawEncoder),
    "alaw": AudioFormat("alaw", "audio/x-alaw-basic", AlawEncoder),
    "opus": AudioFormat("opus", "audio/ogg", _av("ogg", "libopus", "audio/ogg", page_duration="20000"), OPUS_RATES),
    "mp3": AudioFormat("mp3", "audio/mpeg", _av("mp3", "libmp3lame", "audio/mpeg"), MP3_RATES),
    "flac": AudioFormat("flac", "audio/flac", _av("flac", "flac", "audio/flac")),
    "aac": AudioFormat("aac", "audio/aac", _av("adts", "aac", "audio/aac"), MP3_RATES),
}


def audio_format(name: str, field: str = "response_format", allowed: tuple[str, ...] | None = None) -> AudioFormat:
    """The format called `name`, or UnsupportedFormat naming `field` and the choices."""
    choices = allowed or tuple(FORMATS)
    spec = FORMATS.get(name) if name in choices else None
    if spec is None:
        raise UnsupportedFormat(f"{field}: {name!r} is not supported; use one of {', '.join(choices)}")
    return spec
