"""A call's control channel is authenticated like every route and belongs to whoever brought the call: with
`API_KEYS`, the key on the media URL (the platforms put it in the URL they are given); AudioSocket connections
carry no key, so their calls answer to any valid key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import aiohttp
import pytest

from clients.telephony import CONTROL, TWILIO, AudioSocketPeer, WebSocketPeer, event, speak
from tests.calls import CallsServer, start_calls_server

KEYS = ("k_first", "k_second")


@pytest.fixture(scope="module")
def keyed() -> Iterator[CallsServer]:
    running = start_calls_server({"API_KEYS": ",".join(KEYS)})
    yield running
    running.server.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def handshake(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """The status and error code of a control channel's handshake that is refused."""
    async with http.get(url, headers=headers) as resp:
        body = await resp.json()
        return resp.status, body["error"]["code"]


@pytest.mark.asyncio
async def test_a_call_answers_to_the_key_that_brought_it_and_no_other(keyed: CallsServer) -> None:
    call_id = str(uuid.uuid4())
    control_url = f"{keyed.url}/ws/calls/{call_id}"
    async with (
        aiohttp.ClientSession() as http,
        WebSocketPeer.open(http, keyed.url, TWILIO, call_id, query=f"?api_key={KEYS[0]}") as twilio,
        WebSocketPeer.open(http, keyed.url, CONTROL, call_id, headers=bearer(KEYS[0]), wait_s=10.0) as control,
    ):
        assert await handshake(http, control_url) == (401, "unauthorized")
        assert await handshake(http, control_url, bearer(KEYS[1])) == (404, "unknown_call")
        assert await handshake(http, f"{keyed.url}/ws/calls/never", bearer(KEYS[0])) == (404, "unknown_call")
        await speak(control, "Only for the first key.", "k")
        await event(control, "done", "k")
        assert twilio.received.frames
        async with WebSocketPeer.open(http, keyed.url, CONTROL, call_id, query=f"?api_key={KEYS[0]}") as second:
            await second.send({"type": "cancel"})
            await second.received.wait_count("type", "cancelled", 1)


@pytest.mark.asyncio
async def test_an_audiosocket_call_answers_to_any_valid_key(keyed: CallsServer) -> None:
    call_id = uuid.uuid4()
    async with (
        aiohttp.ClientSession() as http,
        AudioSocketPeer.open("127.0.0.1", keyed.audiosocket_port, call_id) as asterisk,
        WebSocketPeer.open(http, keyed.url, CONTROL, str(call_id), headers=bearer(KEYS[1]), wait_s=10.0) as control,
    ):
        assert await handshake(http, f"{keyed.url}/ws/calls/{call_id}") == (401, "unauthorized")
        await speak(control, "Any key will do.", "a")
        await event(control, "done", "a")
        assert asterisk.received.frames


@pytest.mark.asyncio
async def test_jambonz_presents_its_vendor_key_as_a_bearer_token(keyed: CallsServer) -> None:
    async with aiohttp.ClientSession() as http:
        for headers, status in ((None, 401), (bearer("wrong"), 401), (bearer(KEYS[1]), 200)):
            async with http.post(keyed.url + "/jambonz/tts", json={"text": "Keyed."}, headers=headers) as resp:
                assert resp.status == status
