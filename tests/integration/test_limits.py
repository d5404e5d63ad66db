"""Limits with a clear error when hit: SDP size, peers per address, messages per second per session (binary ones
and telephony's too), the size of what an error quotes, utterance ids (unique in a session, of bounded length)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from clients.metrics import sample
from clients.rtc import SpeechClient, bare_offer
from media_server.session.commands import MAX_ID_CHARS
from media_server.session.session import MAX_EVENT_MESSAGE_CHARS
from tests.probes import wait_for_metrics
from tests.server import RunningServer, start_server

MAX_SDP_BYTES = 4096
MESSAGES_PER_SECOND = 5
TWILIO_MEDIA_PER_SECOND = 50


@pytest.fixture(scope="module")
def strict() -> Iterator[RunningServer]:
    server = start_server(
        {
            "MAX_SDP_BYTES": str(MAX_SDP_BYTES),
            "MAX_PEERS_PER_IP": "1",
            "MAX_MESSAGES_PER_SECOND": str(MESSAGES_PER_SECOND),
        }
    )
    yield server
    server.stop()


async def post_offer(url: str, sdp: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/rtc/offer", json={"sdp": sdp, "type": "offer"}, headers=headers) as resp:
            answer: dict[str, Any] = await resp.json()
            status = resp.status
        if status == 200:
            async with http.delete(url + f"/rtc/sessions/{answer['session_id']}") as resp:
                assert resp.status == 200
    return status, answer


@pytest.mark.asyncio
async def test_an_offer_over_the_sdp_limit_is_refused(strict: RunningServer) -> None:
    pc, sdp = await bare_offer()
    try:
        padded = sdp + "a=x-padding:" + "x" * (MAX_SDP_BYTES - len(sdp)) + "\r\n"
        status, error = await post_offer(strict.url, padded)
        assert status == 400 and error["error"]["code"] == "invalid_offer"
        assert f"over the limit of {MAX_SDP_BYTES}" in error["error"]["message"]
        assert (await post_offer(strict.url, sdp))[0] == 200
    finally:
        await pc.close()


@pytest.mark.asyncio
async def test_one_address_holds_at_most_its_share_of_peers(strict: RunningServer) -> None:
    first = SpeechClient(strict.url)
    await first.connect()
    second = SpeechClient(strict.url)
    try:
        with pytest.raises(ConnectionError, match="429.*too_many_peers_from_client"):
            await second.connect()
        pc, sdp = await bare_offer()
        spoofed = {"X-Forwarded-For": "203.0.113.50"}  # no trusted proxy: the header counts for nothing
        status, error = await post_offer(strict.url, sdp, spoofed)
        await pc.close()
        assert status == 429 and error["error"]["code"] == "too_many_peers_from_client"
    finally:
        await second.close()
        await first.close()
    await wait_for_metrics(strict.url, {sample("media_server_peers"): 0.0})
    third = SpeechClient(strict.url)
    await third.connect()
    await third.close()


async def events_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                events.append(json.loads(message.data))
                if events[-1]["type"] == kind:
                    return events
    raise AssertionError(f"the socket closed before a {kind!r} event")


@pytest.mark.asyncio
async def test_websocket_messages_over_the_rate_are_dropped_and_reported_once(strict: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(strict.url + "/ws/tts") as ws:
        for _ in range(MESSAGES_PER_SECOND * 4):
            await ws.send_json({"type": "flush"})
        events = await events_until(ws, "error")
        errors = [event for event in events if event["type"] == "error"]
        assert [error["code"] for error in errors] == ["rate_limited"]
        assert 0 < errors[0]["retry_after_s"] <= 1 / MESSAGES_PER_SECOND
        # The server named the wait; after it, the same session is served again.
        await asyncio.sleep(errors[0]["retry_after_s"])
        await ws.send_json({"type": "speak", "text": "Still here.", "id": "after"})
        done = await events_until(ws, "done")
        assert done[-1]["id"] == "after"
        assert not [event for event in done if event["type"] == "error"]


@pytest.mark.asyncio
async def test_data_channel_messages_are_rate_limited_per_session(strict: RunningServer) -> None:
    flooder = SpeechClient(strict.url)
    await flooder.connect()
    try:
        for _ in range(MESSAGES_PER_SECOND * 3):
            flooder.send_raw("not even JSON")
        await flooder.wait_until(lambda: any(e.get("code") == "rate_limited" for _, e in flooder.received.events))
        [limited] = [event for _, event in flooder.received.events if event.get("code") == "rate_limited"]
        # The server named the wait; after it, a cancel is answered, and everything before it has arrived.
        await asyncio.sleep(limited["retry_after_s"])
        sent = flooder.send({"type": "cancel"})
        await flooder.wait_event("cancelled", after=sent, timeout_s=10)
        codes = [event.get("code") for _, event in flooder.received.events if event["type"] == "error"]
        assert codes == ["invalid_request"] * MESSAGES_PER_SECOND + ["rate_limited"]
    finally:
        await flooder.close()


async def first_error(ws: aiohttp.ClientWebSocketResponse, key: str = "type") -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                event: dict[str, Any] = json.loads(message.data)
                if event[key] == "error":
                    return event
    raise AssertionError("the socket closed before an error event")


async def errors_until_rate_limited(ws: aiohttp.ClientWebSocketResponse, key: str = "type") -> list[dict[str, Any]]:
    """The error events up to and including the first `rate_limited` one."""
    errors: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT and (event := json.loads(message.data))[key] == "error":
                errors.append(event)
                if event["code"] == "rate_limited":
                    return errors
    raise AssertionError(f"the socket closed before a rate_limited event: {errors}")


@pytest.mark.asyncio
async def test_binary_websocket_messages_count_against_the_rate(strict: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(strict.url + "/ws/tts") as ws:
        for _ in range(MESSAGES_PER_SECOND * 4):
            await ws.send_bytes(b"\x00" * 1024)
        errors = await errors_until_rate_limited(ws)
    assert [error["code"] for error in errors] == ["invalid_request"] * MESSAGES_PER_SECOND + ["rate_limited"]
    assert all("binary" in error["message"] for error in errors[:-1])


@pytest.mark.asyncio
async def test_telephony_takes_twilios_media_stream_yet_a_flood_is_limited(strict: RunningServer) -> None:
    """Twilio sends 50 `media` events a second; they come on top of `MAX_MESSAGES_PER_SECOND`, not out of it."""
    media = {"event": "media", "streamSid": "MZ1", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}
    async with aiohttp.ClientSession() as http, http.ws_connect(strict.url + "/ws/telephony") as ws:
        await ws.send_json({"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1"}})
        for _ in range(TWILIO_MEDIA_PER_SECOND * 2):
            await ws.send_json(media)
            await asyncio.sleep(1 / TWILIO_MEDIA_PER_SECOND)
        await ws.send_json({"event": "speak", "text": "Still taking calls.", "id": "call"})
        async with asyncio.timeout(20):
            async for message in ws:
                event = json.loads(message.data)
                assert event["event"] != "error", event
                if event["event"] == "done":
                    break
        for _ in range(TWILIO_MEDIA_PER_SECOND * 4):
            await ws.send_json(media)
        [limited] = await errors_until_rate_limited(ws, key="event")
    assert limited["retry_after_s"] > 0


@pytest.mark.asyncio
async def test_errors_quote_at_most_a_few_hundred_characters_of_what_was_sent(server_url: str) -> None:
    """An error event is never larger than a line: a 60 KB bad value cannot make a 60 KB event."""
    async with aiohttp.ClientSession() as http:
        for path, key in (("/ws/tts", "type"), ("/ws/telephony", "event")):
            async with http.ws_connect(server_url + path) as ws:
                await ws.send_json({key: "x" * 60_000})
                error = await first_error(ws, key)
                assert error["code"] == "invalid_request" and len(error["message"]) <= MAX_EVENT_MESSAGE_CHARS
                assert error["message"].startswith(f"{key}: unknown") and error["message"].endswith("…")


@pytest.mark.asyncio
async def test_an_utterance_id_still_in_use_is_refused_by_name(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        await ws.send_json({"type": "speak", "text": "The first of two.", "id": "same"})
        await ws.send_json({"type": "speak", "text": "The second of two.", "id": "same"})
        events = await events_until(ws, "done")
        errors = [event for event in events if event["type"] == "error"]
        assert [(error["code"], "id" in error) for error in errors] == [("invalid_request", False)]
        assert errors[0]["message"].startswith("id: 'same' is taken")
        assert [event["id"] for event in events if event["type"] == "audio_start"] == ["same"]
        # Once it has ended, the id is free again.
        await ws.send_json({"type": "speak", "text": "The second, again.", "id": "same"})
        events = await events_until(ws, "done")
        assert not [event for event in events if event["type"] == "error"]


@pytest.mark.asyncio
async def test_an_utterance_id_over_the_length_limit_is_refused(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        await ws.send_json({"type": "speak", "text": "Too long a name.", "id": "x" * (MAX_ID_CHARS + 1)})
        error = await first_error(ws)
        assert error["message"] == f"id: {MAX_ID_CHARS + 1} characters is over the limit of {MAX_ID_CHARS}"
        await ws.send_json({"type": "speak", "text": "Just long enough.", "id": "x" * MAX_ID_CHARS})
        assert (await events_until(ws, "done"))[-1]["id"] == "x" * MAX_ID_CHARS
