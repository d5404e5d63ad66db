"""Word timings on `/ws/tts` and the data channel, checked against the audio itself.

- `words` events come in playout order and never before the audio that
  starts them has been sent (counted in bytes received before each event);
- a cancel's `spoken_text` is the words whose `end_ms` is at or before its
  `played_ms`;
- each word's `start_ms` is within 60 ms of the speech onset an energy
  measure finds for it, on ten sentences whose every word follows a pause
  (a comma or the start), where an onset is unambiguous: the first 5 ms
  frame above the silence threshold after at least 80 ms below it (a stop's
  closure inside a word can make one more: each word must have its own,
  in order).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import numpy as np
import pytest

from clients.rtc import SpeechClient

RATE = 24000
ONSET_TOLERANCE_MS = 60
LISTS = [
    "Apples, oranges, lemons, cherries, peaches.",
    "Monday, Tuesday, Wednesday, Thursday, Friday.",
    "Red, yellow, purple, silver, golden.",
    "Lions, tigers, wolves, bears, eagles.",
    "Paris, London, Berlin, Madrid, Vienna.",
    "Piano, guitar, violin, trumpet, cello.",
    "Seven, eleven, twelve, thirty, fifty.",
    "Rivers, mountains, deserts, forests, meadows.",
    "Hammer, chisel, wrench, ladder, shovel.",
    "Doctor, teacher, farmer, painter, sailor.",
]


async def speak(url: str, text: str, cancel_after_words: int | None = None) -> tuple[list[Any], bytes]:
    """Speak `text` on /ws/tts; every message in order ((bytes so far, event) for text), and the audio."""
    received: list[Any] = []
    audio = bytearray()
    words = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws/tts?format=pcm&sample_rate=24000") as ws:
        await ws.send_json({"type": "speak", "text": text, "id": "u"})
        async with asyncio.timeout(60):
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    audio += message.data
                    continue
                event = json.loads(message.data)
                received.append((len(audio), event))
                if event["type"] == "words":
                    words += len(event["words"])
                    if cancel_after_words is not None and words >= cancel_after_words:
                        await ws.send_json({"type": "cancel"})
                        cancel_after_words = None
                if event["type"] in ("done", "cancelled", "error"):
                    break
    return received, bytes(audio)


def words_of(received: list[Any]) -> list[dict[str, Any]]:
    return [word for _, event in received if event["type"] == "words" for word in event["words"]]


@pytest.mark.asyncio
async def test_words_come_in_order_once_their_audio_has_been_sent(server_url: str) -> None:
    text = "It costs $3.50 today, said Dr. Smith. The rest of the sentence follows, in order."
    received, audio = await speak(server_url, text)
    words = words_of(received)
    assert [w["word"] for w in words] == text.split()
    starts = [w["start_ms"] for w in words]
    assert starts == sorted(starts) and all(w["start_ms"] <= w["end_ms"] for w in words)
    for sent_bytes, event in received:
        if event["type"] == "words":
            sent_ms = sent_bytes / 2 / RATE * 1000
            assert all(word["start_ms"] < sent_ms for word in event["words"]), (sent_ms, event)
    done = received[-1][1]
    assert done["type"] == "done"
    assert words[-1]["end_ms"] <= done["audio_ms"] + 1  # milliseconds rounded
    assert len(audio) / 2 / RATE * 1000 == pytest.approx(done["audio_ms"], abs=2)


@pytest.mark.asyncio
async def test_a_cancel_says_which_words_were_spoken_whole(server_url: str) -> None:
    text = " ".join(LISTS)
    received, _ = await speak(server_url, text, cancel_after_words=8)
    cancelled = received[-1][1]
    assert cancelled["type"] == "cancelled" and cancelled["id"] == "u"
    words = words_of(received)
    spoken = [w["word"] for w in words if w["end_ms"] <= cancelled["played_ms"]]
    assert len(spoken) >= 7
    assert cancelled["spoken_text"] == " ".join(spoken)
    assert text.startswith(cancelled["spoken_text"])


def onsets_ms(pcm: np.ndarray, frame_ms: int = 5, gap_ms: int = 80) -> list[float]:
    """Speech onsets after silence: the first frame above the threshold after `gap_ms` or more below it."""
    frame = RATE * frame_ms // 1000
    frames = len(pcm) // frame
    rms = np.sqrt(np.mean(pcm[: frames * frame].astype(np.float64).reshape(frames, frame) ** 2, axis=1))
    threshold = rms.max() * 10 ** (-45 / 20)
    found: list[float] = []
    quiet = gap_ms // frame_ms  # the utterance's start counts as after silence
    for index, level in enumerate(rms):
        if level < threshold:
            quiet += 1
            continue
        if quiet >= gap_ms // frame_ms:
            found.append(index * frame_ms)
        quiet = 0
    return found


@pytest.mark.asyncio
async def test_each_word_starts_within_60_ms_of_its_speech_onset_on_ten_sentences(server_url: str) -> None:
    errors: list[float] = []
    for text in LISTS:
        received, audio = await speak(server_url, text)
        words = words_of(received)
        assert [w["word"] for w in words] == text.split()
        onsets = onsets_ms(np.frombuffer(audio, dtype="<i2"))
        assert len(words) <= len(onsets) <= len(words) + 2, (text, onsets)
        taken = -1
        for word in words:
            nearest = min(range(len(onsets)), key=lambda i: abs(onsets[i] - word["start_ms"]))
            assert nearest > taken, (text, word, onsets)  # its own onset, in order
            taken = nearest
            errors.append(abs(word["start_ms"] - onsets[nearest]))
            assert errors[-1] <= ONSET_TOLERANCE_MS, (text, word, onsets)
    assert len(errors) == 50
    assert float(np.median(errors)) <= 20


@pytest.mark.asyncio
async def test_words_reach_a_webrtc_peer_over_its_data_channel(server_url: str) -> None:
    peer = SpeechClient(server_url)
    try:
        await peer.connect()
        text = "Captions arrive as the words are played, one event at a time."
        peer.send({"type": "speak", "text": text, "id": "c1"})
        started_at, _ = await peer.wait_event("audio_start", "c1")
        await peer.wait_event("done", "c1")
        events = [(at, ev) for at, ev in peer.received.events if ev["type"] == "words"]
        assert [w["word"] for _, ev in events for w in ev["words"]] == text.split()
        assert all(at >= started_at for at, _ in events)
        assert len(events) > 1  # sent as they play, not all at once
    finally:
        await peer.close()
