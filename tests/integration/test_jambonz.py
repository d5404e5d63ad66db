"""jambonz's custom TTS vendor API, as its public documentation describes it: the HTTP route (text or SSML in,
`audio/l16;rate=N` out) and the streaming socket (`connect` first, then `stream` / `flush` / `stop` in and binary
PCM out), driven by a fake jambonz."""

from __future__ import annotations

import aiohttp
import pytest

from clients.telephony import JAMBONZ, WebSocketPeer
from tests.calls import LONG_TEXT

SENTENCE = "Your table for two is booked for eight o'clock tonight."


@pytest.mark.asyncio
async def test_the_http_route_answers_linear16_at_the_rate_the_vendor_url_names(server_url: str) -> None:
    body = {"language": "en-US", "type": "text", "text": SENTENCE}
    async with aiohttp.ClientSession() as http:
        lengths = {}
        for rate in (8000, 16000):
            async with http.post(f"{server_url}/jambonz/tts?sampleRate={rate}", json=body) as resp:
                assert resp.status == 200 and resp.headers["Content-Type"] == f"audio/l16;rate={rate}"
                lengths[rate] = len(await resp.read())
        async with http.post(server_url + "/jambonz/tts", json=body) as resp:
            assert resp.headers["Content-Type"] == "audio/l16;rate=8000"
    assert lengths[8000] % 2 == 0 and lengths[8000] / 2 / 8000 > 1.5
    assert lengths[16000] == pytest.approx(2 * lengths[8000], rel=0.01)


@pytest.mark.asyncio
async def test_ssml_is_spoken_with_its_breaks_and_a_bad_request_is_a_json_error(server_url: str) -> None:
    plain = "Hello from the World Wide Web."
    ssml = '<speak>Hello <break time="800ms"/> from the <sub alias="World Wide Web">WWW</sub>.</speak>'
    async with aiohttp.ClientSession() as http:
        seconds = {}
        for kind, text in (("text", plain), ("ssml", ssml)):
            async with http.post(server_url + "/jambonz/tts", json={"type": kind, "text": text}) as resp:
                assert resp.status == 200
                seconds[kind] = len(await resp.read()) / 2 / 8000
        assert seconds["ssml"] > seconds["text"] + 0.6  # the break is silence, the alias is said
        async with http.post(server_url + "/jambonz/tts", json={"type": "ssml", "text": "<speak>open"}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_ssml"
        for body, query, field in (
            ({"type": "xml", "text": SENTENCE}, "", "type"),
            ({"type": "text"}, "", "text"),
            ({"text": SENTENCE, "voice": "nobody"}, "", "voice"),
            ({"text": SENTENCE}, "?sampleRate=44100", "sampleRate"),
        ):
            async with http.post(server_url + "/jambonz/tts" + query, json=body) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["message"].startswith(f"{field}: ")


@pytest.mark.asyncio
async def test_the_streaming_socket_connects_speaks_what_is_streamed_and_stops_on_stop(server_url: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        WebSocketPeer.open(http, server_url, JAMBONZ, "", query="?sampleRate=16000&language=en-US") as jambonz,
    ):
        received = jambonz.received
        await received.wait_count("type", "connect", 1)
        assert received.of("type", "connect") == [
            {"type": "connect", "data": {"sample_rate": 16000, "base64_encoding": False}}
        ]
        for piece in ("Your table for two ", "is booked for eight ", "o'clock tonight."):
            await jambonz.send({"type": "stream", "text": piece})
        await jambonz.send({"type": "flush"})
        await received.wait_for(lambda: sum(len(frame) for _, frame in received.frames) / 2 / 16000 > 1.5)

        before = sum(len(frame) for _, frame in received.frames)
        await jambonz.send({"type": "stream", "text": LONG_TEXT})
        await jambonz.send({"type": "flush"})
        await received.wait_for(lambda: sum(len(frame) for _, frame in received.frames) > before)
        await jambonz.send({"type": "stop"})
        await jambonz.send({"type": "keepalive"})
        await jambonz.send({"type": "shout"})  # answered behind the stop: everything of the long text came before
        await received.wait_count("type", "error", 1)
        long_s = (sum(len(frame) for _, frame in received.frames) - before) / 2 / 16000
        assert long_s < 13.6 / 2, long_s  # cut, not spoken to the end
        assert received.of("type", "error")[0]["error"].startswith("type: unknown message type 'shout'")

        after_stop = sum(len(frame) for _, frame in received.frames)
        await jambonz.send({"type": "stream", "text": "Anything else?"})
        await jambonz.send({"type": "flush"})
        await received.wait_for(lambda: sum(len(frame) for _, frame in received.frames) > after_stop)
