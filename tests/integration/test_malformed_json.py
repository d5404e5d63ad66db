"""JSON built to break a decoder, on every route and transport: a clear 400 or `error` event, never a crash.

Deep nesting (past the interpreter's stack), a number of thousands of digits
in a parameter, and a message over `MAX_MESSAGE_BYTES`: each HTTP route
answers 400 naming the problem; each socket and the data channel answer an
`error` event and go on speaking. The server counts no 500 throughout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from clients.metrics import internal_errors, scrape
from clients.rtc import SpeechClient

JSON_ROUTES = ("/tts", "/tts/stream", "/tts/pcm", "/v1/audio/speech", "/rtc/offer")
DEEP_BODY = "[" * 100_000 + "]" * 100_000  # 200 KB, under MAX_BODY_BYTES
DEEP_MESSAGE = "[" * 30_000 + "]" * 30_000  # 60 KB, under MAX_MESSAGE_BYTES
HUGE_NUMBER = "1" * 4000  # under Python's 4300-digit int limit, far over any float
OVERSIZE_TEXT = "a" * 70_000  # over the default MAX_MESSAGE_BYTES (64 KiB)


def with_huge_speed(route: str) -> str:
    text_field = "input" if route == "/v1/audio/speech" else "text"
    return '{"' + text_field + '": "Hi.", "voice": "alloy", "speed": ' + HUGE_NUMBER + "}"


@pytest.mark.asyncio
@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (lambda route: DEEP_BODY, "body: JSON nested deeper than 32 levels"),
        (with_huge_speed, "body: a number of 4000 characters"),
        (lambda route: '{"text": "Hi.", "speed": NaN}', "body: NaN is not a JSON value"),
    ],
    ids=["deep", "huge-number", "nan"],
)
async def test_every_json_route_answers_400_naming_the_problem(
    server_url: str, route: str, body: Callable[[str], str], problem: str
) -> None:
    headers = {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(server_url + route, data=body(route), headers=headers) as resp,
    ):
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith(problem)


async def next_text(ws: aiohttp.ClientWebSocketResponse, key: str, wanted: str) -> dict[str, Any]:
    """The next text message whose `key` is `wanted`, skipping audio and other events."""
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            event: dict[str, Any] = json.loads(message.data)
            if event.get(key) == wanted:
                return event
    raise AssertionError(f"the socket closed ({ws.close_code}) before a {wanted!r} message")


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "key"), [("/ws/tts", "type"), ("/ws/telephony", "event")])
async def test_websockets_answer_an_error_event_and_go_on(server_url: str, path: str, key: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + path) as ws:
        await ws.send_str(DEEP_MESSAGE)
        error = await next_text(ws, key, "error")
        assert (error["code"], error["message"]) == ("invalid_request", "message: JSON nested deeper than 32 levels")
        await ws.send_str('{"' + key + '": "speak", "text": "Hi.", "speed": ' + HUGE_NUMBER + "}")
        assert (await next_text(ws, key, "error"))["message"].startswith("message: a number of 4000 characters")
        await ws.send_str(json.dumps({key: "speak", "text": OVERSIZE_TEXT}))
        error = await next_text(ws, key, "error")
        assert error["message"].startswith("message: 70") and "over the limit of 65536" in error["message"]
        await ws.send_str(json.dumps({key: "speak", "text": "Still speaking.", "id": "after"}))
        assert (await next_text(ws, key, "done"))["id"] == "after"
    assert internal_errors((await scrape(server_url)).samples) == 0


@pytest.mark.asyncio
async def test_the_data_channel_answers_an_error_event_and_goes_on(server_url: str) -> None:
    client = SpeechClient(server_url)
    await client.connect()
    try:
        client.send_raw(DEEP_MESSAGE)
        client.send({"type": "speak", "text": "Still here.", "id": "after"})
        _, error = await client.wait_event("error")
        assert error["message"] == "message: JSON nested deeper than 32 levels"
        await client.wait_event("done", "after")
    finally:
        await client.close()
