"""Pipecat's own services and test utilities against this server: run in a virtualenv with pipecat-ai installed.

`python clients/pipecat_services.py BASE_URL` prints one JSON object: what Pipecat's `CartesiaTTSService`
(at `/tts/websocket`) and `OpenAITTSService` (at `/v1`) produced through `pipecat.tests.utils.run_test`, and
what an interruption mid-utterance left. Pipecat pins protobuf<7, so this cannot run in the project's own
virtualenv; `tests/integration/test_pipecat.py` runs it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from pipecat.frames.frames import InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import SleepFrame, run_test

VOICE = "en_US-joe-medium"
TEXT = "Hello from Pipecat. Word timestamps arrive with the audio."
LONG = "This answer goes on for a long time, sentence after sentence, until the user interrupts it. " * 40
"""About four minutes of speech: far more than the server makes before the interruption."""


def summary(frames: Any) -> dict[str, Any]:
    audio = [f for f in frames if isinstance(f, TTSAudioRawFrame)]
    words = [f for f in frames if isinstance(f, TTSTextFrame)]
    return {
        "audio_s": sum(len(f.audio) / 2 / f.sample_rate for f in audio),
        "words": [f.text for f in words],
        "pts": [f.pts for f in words],
    }


async def main(base_url: str) -> None:
    ws_url = base_url.replace("http", "ws", 1) + "/tts/websocket"

    def cartesia() -> CartesiaTTSService:
        settings = CartesiaTTSService.Settings(voice=VOICE)
        return CartesiaTTSService(api_key="unused", url=ws_url, settings=settings, sample_rate=24000)

    down, _ = await run_test(cartesia(), frames_to_send=[TTSSpeakFrame(TEXT), SleepFrame(sleep=4.0)])
    result: dict[str, Any] = {"cartesia": summary(down)}
    interrupted, _ = await run_test(
        cartesia(),
        frames_to_send=[TTSSpeakFrame(LONG), SleepFrame(sleep=1.5), InterruptionFrame(), SleepFrame(sleep=1.0)],
    )
    result["interrupted"] = summary(interrupted)
    openai = OpenAITTSService(api_key="unused", base_url=base_url + "/v1", voice="alloy", sample_rate=24000)
    down, _ = await run_test(openai, frames_to_send=[TTSSpeakFrame(TEXT), SleepFrame(sleep=3.0)])
    result["openai"] = summary(down)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
