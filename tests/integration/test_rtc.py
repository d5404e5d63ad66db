"""End to end over WebRTC: real aiortc peers decode the real Opus track."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from clients.rtc import FRAME_S, RECEIVER_DELAY_S, SpeechClient

SENTENCE = "Hello there, this is the media server speaking to you over a real peer connection."
LONG_TEXT = " ".join(
    [
        "This is a long utterance that will be interrupted.",
        "It goes on for several sentences so that there is plenty left to cut.",
        "Nobody should hear this part, because the listener barged in long before it.",
        "And certainly not this last sentence either.",
    ]
)


def audible_span_ms(client: SpeechClient, since: float) -> float:
    frames = client.received.audible(since=since)
    assert frames, "no audible audio was received"
    return (frames[-1].index - frames[0].index + 1) * FRAME_S * 1000


@pytest.mark.asyncio
async def test_speak_plays_audio_as_long_as_done_says(peer: SpeechClient) -> None:
    sent = peer.send({"type": "speak", "text": SENTENCE, "id": "u1"})
    started_at, _ = await peer.wait_event("audio_start", "u1")
    done_at, done = await peer.wait_event("done", "u1")
    assert started_at < done_at
    assert done["audio_ms"] > 2000
    assert audible_span_ms(peer, sent) == pytest.approx(done["audio_ms"], rel=0.10)
    _, audio_start = await peer.wait_event("audio_start", "u1")
    assert 0 < audio_start["ttfa_ms"] < 1000


@pytest.mark.asyncio
async def test_appended_fragments_are_heard_before_the_last_one_is_sent(peer: SpeechClient) -> None:
    words = (
        "The weather today is sunny and warm. Tomorrow it may rain in the afternoon. On the weekend the sun comes back."
    ).split(" ")
    first_sentence = words[:7]
    for word in first_sentence:
        peer.send({"type": "append", "text": word + " "})
    await peer.wait_until(lambda: bool(peer.received.audible()), timeout_s=10)
    heard_at = peer.received.audible()[0].received_at
    for word in words[7:]:
        last_sent = peer.send({"type": "append", "text": word + " "})
    peer.send({"type": "flush"})
    _, started = await peer.wait_event("started")
    _, done = await peer.wait_event("done", started["id"])
    assert heard_at < last_sent
    assert done["audio_ms"] > 4000


@pytest.mark.asyncio
async def test_cancel_stops_audio_within_100_ms_and_the_peer_speaks_again(peer: SpeechClient) -> None:
    peer.send({"type": "speak", "text": LONG_TEXT, "id": "long"})
    await peer.wait_event("audio_start", "long")
    await peer.wait_until(lambda: len(peer.received.audible()) > 25)
    cancel_at = peer.send({"type": "cancel"})
    _, cancelled = await peer.wait_event("cancelled", "long")
    await asyncio.sleep(0.5)  # listen on: nothing more may be heard
    # Time the cut by when frames reached the client, not when its jitter buffer let them out.
    heard_after_ms = [
        (f.received_at - RECEIVER_DELAY_S - cancel_at) * 1000 for f in peer.received.audible(since=cancel_at)
    ]
    assert max(heard_after_ms, default=0) < 100
    assert 400 < cancelled["played_ms"] < 8000
    assert not [ev for _, ev in peer.received.events if ev["type"] == "done" and ev.get("id") == "long"]

    again = peer.send({"type": "speak", "text": "I am back.", "id": "again"})
    _, done = await peer.wait_event("done", "again", after=again)
    assert done["audio_ms"] > 300


@pytest.mark.asyncio
async def test_two_peers_each_hear_their_own_text(server_url: str) -> None:
    short, long = SpeechClient(server_url), SpeechClient(server_url)
    await asyncio.gather(short.connect(), long.connect())
    try:
        sent = short.send({"type": "speak", "text": "Yes.", "id": "s"})
        long.send({"type": "speak", "text": SENTENCE, "id": "l"})
        (_, short_done), (_, long_done) = await asyncio.gather(
            short.wait_event("done", "s"), long.wait_event("done", "l")
        )
        await asyncio.sleep(0.3)
        assert short_done["audio_ms"] < 1500 < 3000 < long_done["audio_ms"]
        # Cross-talk would make the short peer hear more than its own utterance.
        assert audible_span_ms(short, sent) <= short_done["audio_ms"] + 2 * FRAME_S * 1000
        assert audible_span_ms(long, sent) == pytest.approx(long_done["audio_ms"], rel=0.10)
    finally:
        await asyncio.gather(short.close(), long.close())


@pytest.mark.asyncio
async def test_bad_messages_get_errors_and_the_session_keeps_working(peer: SpeechClient) -> None:
    peer.send_raw("this is not json")
    _, error = await peer.wait_event("error")
    assert error["code"] == "invalid_request" and "JSON" in error["message"]
    sent = peer.send({"type": "dance"})
    _, error = await peer.wait_event("error", after=sent)
    assert "dance" in error["message"]
    sent = peer.send({"type": "speak", "text": "Hi.", "voice": "nobody"})
    _, error = await peer.wait_event("error", after=sent)
    assert error["code"] == "unknown_voice"
    sent = peer.send({"type": "speak", "text": "x" * 6000})
    _, error = await peer.wait_event("error", after=sent)
    assert error["code"] == "text_too_long"
    peer.send({"type": "speak", "text": "Still here.", "id": "ok"})
    _, done = await peer.wait_event("done", "ok")
    assert done["audio_ms"] > 300


@pytest.mark.asyncio
async def test_hang_up_closes_the_session(server_url: str) -> None:
    client = SpeechClient(server_url)
    await client.connect()
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{server_url}/rtc/sessions/{client.session_id}") as resp:
            assert resp.status == 200
        async with http.delete(f"{server_url}/rtc/sessions/{client.session_id}") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "unknown_session"
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sdp": "v=0\r\nthis is not sdp", "type": "offer"}, "sdp"),
        ({"sdp": "", "type": "offer"}, "sdp"),
        ({"sdp": "v=0", "type": "answer"}, "type"),
        ([1, 2, 3], "body"),
    ],
)
async def test_malformed_offers_are_refused_clearly(server_url: str, body: object, field: str) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{server_url}/rtc/offer", json=body) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_offer"
    assert error["message"].startswith(field)
