"""Each call protocol speaks the encoding and rate its URL or its first message asks for: G.711 mu-law and a-law,
16-bit linear PCM in either byte order, 8 to 48 kHz, resampled once; a URL asking for what a protocol does not
offer is refused by name before the upgrade.

Each call speaks the same (cached) sentence, and its frames are decoded the way the protocol defines them: the
loudness must match the mu-law reference. Decoded the wrong way (a-law as mu-law, big-endian as little-endian)
the same bytes come out several times louder, so a wrong encoding cannot pass.
"""

from __future__ import annotations

import dataclasses
import uuid

import aiohttp
import numpy as np
import numpy.typing as npt
import pytest

from clients.telephony import (
    CONTROL,
    VONAGE,
    AudioSocketPeer,
    Message,
    Platform,
    WebSocketPeer,
    controlled_call,
    event,
    speak,
)
from tests.audio import g711_pcm
from tests.calls import CallsServer

TEXT = "Checking the encoding of this call, one frame at a time."
VONAGE_8K = dataclasses.replace(
    VONAGE,
    opening=lambda call_id: [
        {"event": "websocket:connected", "content-type": "audio/l16;rate=8000", "call_id": call_id}
    ],
    caller_audio=lambda: b"\x00" * 320,
)


@dataclasses.dataclass(frozen=True)
class Case:
    protocol: str | Platform
    query: str
    audio_kind: int
    frame_bytes: int
    decode: str
    """mulaw, alaw, le (16-bit little-endian) or be (big-endian)."""
    rate: int


CASES = {
    "twilio mu-law": Case("twilio", "", 0x10, 160, "mulaw", 8000),
    "telnyx a-law": Case("telnyx", "?codec=PCMA", 0x10, 160, "alaw", 8000),
    "telnyx L16 16 kHz": Case("telnyx", "?codec=L16&sample_rate=16000", 0x10, 640, "be", 16000),
    "plivo L16 16 kHz": Case("plivo", "?codec=l16&sample_rate=16000", 0x10, 640, "le", 16000),
    "vonage 8 kHz": Case(VONAGE_8K, "", 0x10, 320, "le", 8000),
    "audiosocket 16 kHz": Case("audiosocket", "", 0x12, 640, "le", 16000),
    "audiosocket 48 kHz": Case("audiosocket", "", 0x16, 1920, "le", 48000),
}


def pcm(data: bytes, decode: str) -> npt.NDArray[np.int16]:
    if decode in ("mulaw", "alaw"):
        return g711_pcm(data, decode)
    return np.frombuffer(data, dtype="<i2" if decode == "le" else ">i2").astype(np.int16)


def rms(samples: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def spoken(
    http: aiohttp.ClientSession, server: CallsServer, case: Case
) -> tuple[list[bytes], Message, list[int]]:
    """The frames of one utterance on a call of `case`, its `done` event, and the AudioSocket kinds of its frames."""
    async with controlled_call(http, server, case.protocol, case.query, case.audio_kind) as (peer, control):
        await speak(control, TEXT, "enc")
        done = await event(control, "done", "enc")
        await peer.received.wait_for(lambda: len(peer.received.frames) * 20 >= done["audio_ms"])
        kinds = peer.kinds if isinstance(peer, AudioSocketPeer) else []
        return [frame for _, frame in peer.received.frames], done, kinds


@pytest.mark.asyncio
async def test_each_call_speaks_the_encoding_and_rate_it_asks_for(calls_server: CallsServer) -> None:
    async with aiohttp.ClientSession() as http:
        reference_frames, _, _ = await spoken(http, calls_server, CASES["twilio mu-law"])
        reference = rms(pcm(b"".join(reference_frames), "mulaw"))
        for name, case in CASES.items():
            frames, done, kinds = await spoken(http, calls_server, case)
            assert {len(frame) for frame in frames} == {case.frame_bytes}, name
            assert len(frames) * 20 == pytest.approx(done["audio_ms"], abs=20), name
            loudness = rms(pcm(b"".join(frames), case.decode))
            assert 0.7 < loudness / reference < 1.4, (name, loudness, reference)
            if kinds:
                assert set(kinds) == {case.audio_kind}, name


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "content_type", "rate"),
    [
        ("", "audio/x-mulaw", 8000),
        ("?codec=l16", "audio/x-l16", 8000),
        ("?codec=l16&sample_rate=16000", "audio/x-l16", 16000),
    ],
)
async def test_plivo_is_told_the_content_type_and_rate_of_every_frame(
    calls_server: CallsServer, query: str, content_type: str, rate: int
) -> None:
    call_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http, http.ws_connect(calls_server.url + "/ws/plivo" + query) as ws:
        start = {"callId": call_id, "streamId": "S1", "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}
        await ws.send_json({"event": "start", "start": start})
        async with WebSocketPeer.open(http, calls_server.url, CONTROL, call_id, wait_s=10.0) as control:
            await speak(control, TEXT, "p")
            play = await ws.receive_json(timeout=20)
    assert play["event"] == "playAudio"
    assert {key: value for key, value in play["media"].items() if key != "payload"} == {
        "contentType": content_type,
        "sampleRate": rate,
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ws/telnyx?codec=G729", "codec"),
        ("/ws/telnyx?codec=PCMU&sample_rate=16000", "sample_rate"),
        ("/ws/plivo?codec=l16&sample_rate=44100", "sample_rate"),
        ("/ws/telephony?codec=alaw", "codec"),
        ("/ws/telephony?voice=nobody", "voice"),
        ("/ws/jambonz/tts?sampleRate=11025", "sampleRate"),
    ],
)
async def test_a_media_url_asking_for_what_its_protocol_does_not_offer_is_refused_by_name(
    calls_server: CallsServer, path: str, field: str
) -> None:
    async with aiohttp.ClientSession() as http, http.get(calls_server.url + path) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["message"].startswith(f"{field}: ")
