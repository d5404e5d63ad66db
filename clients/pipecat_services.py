"""Pipecat's own services and test utilities against this server: run in a virtualenv with pipecat-ai installed.

`python clients/pipecat_services.py BASE_URL` prints one JSON object: what Pipecat's `CartesiaTTSService`
(at `/tts/websocket`) and `OpenAITTSService` (at `/v1`) produced through `pipecat.tests.utils.run_test`, and
what an interruption mid-utterance left: the audio that came before it, and how much audio the server's
engine made in a second after the interruption had settled, with the connection still open (`GET /metrics`;
the service is Pipecat's own, told only to note when its cancel went out). Pipecat pins protobuf<7,
so this cannot run in the project's own virtualenv; `tests/integration/test_pipecat.py` runs it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
from pipecat.frames.frames import InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import SleepFrame, run_test

VOICE = "en_US-joe-medium"
TEXT = "Hello from Pipecat. Word timestamps arrive with the audio."
LONG = " ".join(f"This is sentence {n} of an answer that goes on until the user interrupts it." for n in range(60))
"""About five minutes of speech, every sentence different (a repeated one would come from the server's cache):
more than the server makes before the interruption and the second after."""
ENGINE_AUDIO = "media_server_audio_seconds_total "


async def engine_audio_s(base_url: str) -> float:
    """Seconds of audio the server's engine has made so far."""
    async with aiohttp.ClientSession() as http, http.get(base_url + "/metrics") as response:
        text = await response.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(ENGINE_AUDIO))


def summary(frames: Any) -> dict[str, Any]:
    audio = [f for f in frames if isinstance(f, TTSAudioRawFrame)]
    words = [f for f in frames if isinstance(f, TTSTextFrame)]
    return {
        "audio_s": sum(len(f.audio) / 2 / f.sample_rate for f in audio),
        "words": [f.text for f in words],
        "pts": [f.pts for f in words],
    }


class NotedCancel(CartesiaTTSService):  # type: ignore[misc]
    """Pipecat's Cartesia service, unchanged but for an event set once its cancel has been sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cancel_sent = asyncio.Event()

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        await super().on_audio_context_interrupted(context_id)
        self.cancel_sent.set()


async def made_after_cancel(service: NotedCancel, base_url: str) -> dict[str, Any]:
    """Audio the engine made in one second, starting half a second after the service sent its cancel."""
    await service.cancel_sent.wait()
    await asyncio.sleep(0.5)
    settled = await engine_audio_s(base_url)
    await asyncio.sleep(1.0)
    return {"made_after_s": await engine_audio_s(base_url) - settled}


async def main(base_url: str) -> None:
    ws_url = base_url.replace("http", "ws", 1) + "/tts/websocket"
    settings = CartesiaTTSService.Settings(voice=VOICE)

    down, _ = await run_test(
        CartesiaTTSService(api_key="unused", url=ws_url, settings=settings, sample_rate=24000),
        frames_to_send=[TTSSpeakFrame(TEXT), SleepFrame(sleep=4.0)],
    )
    result: dict[str, Any] = {"cartesia": summary(down)}
    service = NotedCancel(api_key="unused", url=ws_url, settings=settings, sample_rate=24000)
    watch = asyncio.create_task(made_after_cancel(service, base_url))
    interrupted, _ = await run_test(
        service,
        frames_to_send=[TTSSpeakFrame(LONG), SleepFrame(sleep=1.5), InterruptionFrame(), SleepFrame(sleep=4.0)],
    )
    # The run (and so the connection) outlived the watch unless the watch is still going now.
    result["interrupted"] = summary(interrupted) | {"watched_while_open": watch.done()} | await watch
    openai = OpenAITTSService(api_key="unused", base_url=base_url + "/v1", voice="alloy", sample_rate=24000)
    down, _ = await run_test(openai, frames_to_send=[TTSSpeakFrame(TEXT), SleepFrame(sleep=3.0)])
    result["openai"] = summary(down)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
