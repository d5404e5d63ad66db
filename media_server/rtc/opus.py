"""The track's 20 ms frames as Opus packets, encoded here rather than by aiortc.

aiortc would resample every frame to stereo and encode it in a thread pool
(one executor round trip per frame per peer). Speech is mono, so frames are
encoded mono (WebRTC's Opus is negotiated as two channels, and every decoder
takes mono packets), on the event loop, with libopus tuned for voice. Silence
between utterances costs nothing: after a few real silent frames (so the
encoder's and the peer's decoder states both settle on silence) the same
3-byte silent packet is sent until speech resumes.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

import av
import numpy as np

from media_server.audio.constants import FRAME_SAMPLES, RTC_RATE
from media_server.audio.pcm import Pcm

TIME_BASE = Fraction(1, RTC_RATE)
BIT_RATE = 48_000
"""Mono speech: transparent for voice at well under aiortc's 96 kb/s stereo default."""
SETTLE_FRAMES = 5
"""Silent frames encoded for real after speech, before the cached silent packet takes over."""


class OpusPackets:
    """One peer's stream of encoded frames; `encode` is called once per 20 ms frame, in order."""

    def __init__(self) -> None:
        self._codec = _encoder()
        self._pts = 0
        self._silent_run = 0

    def encode(self, pcm: Pcm, silent: bool) -> av.Packet[Any]:
        """The packet for the next frame; `silent`: the frame is known silence between utterances."""
        self._silent_run = self._silent_run + 1 if silent else 0
        payload = silent_payload() if self._silent_run > SETTLE_FRAMES else self._encode(pcm)
        packet = av.Packet(payload)
        packet.pts = self._pts
        packet.time_base = TIME_BASE
        self._pts += FRAME_SAMPLES
        return packet

    def _encode(self, pcm: Pcm) -> bytes:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RTC_RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        packets = self._codec.encode(frame)
        # libopus gives one packet per 20 ms frame (its look-ahead shows only in the packets' own pts).
        return b"".join(bytes(packet) for packet in packets)


def _encoder() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = RTC_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = BIT_RATE
    codec.time_base = TIME_BASE
    codec.options = {"application": "voip"}
    return codec


@functools.cache
def silent_payload() -> bytes:
    """What a settled encoder makes of a silent frame."""
    codec = _encoder()
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    payload = b""
    for n in range(SETTLE_FRAMES * 2):
        frame = av.AudioFrame.from_ndarray(silence.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RTC_RATE
        frame.pts = n * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        payload = b"".join(bytes(packet) for packet in codec.encode(frame)) or payload
    return payload
