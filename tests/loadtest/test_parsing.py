"""The harness's own parsing: audio byte streams, WAV or raw PCM."""

from __future__ import annotations

import io
import wave

from loadtest.http_clients import AudioTally


def test_audio_is_counted_after_the_wav_header_at_its_rate() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\x00\x01" * 8_000)
    data = buffer.getvalue()
    tally = AudioTally(sample_rate=24_000, wav=True)
    assert not tally.feed(data[:20])  # header bytes only: no audio yet
    assert tally.feed(data[20:])
    assert tally.sample_rate == 16_000 and tally.seconds == 0.5


def test_raw_pcm_is_counted_at_the_given_rate() -> None:
    tally = AudioTally(sample_rate=24_000, wav=False)
    assert tally.feed(b"\x00" * 48_000) and tally.seconds == 1.0
    assert not tally.feed(b"")
