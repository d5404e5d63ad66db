"""Audio constants, defined once: units in the names."""

from __future__ import annotations

RTC_RATE = 48_000  # Hz, the Opus clock
FRAME_MS = 20
FRAME_S = FRAME_MS / 1000
FRAME_SAMPLES = RTC_RATE * FRAME_MS // 1000  # 960 samples per 20 ms frame
OPENAI_PCM_RATE = 24_000  # Hz, OpenAI's `pcm` response format
SAMPLE_WIDTH = 2  # bytes, s16le
