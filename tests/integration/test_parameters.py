"""Every numeric parameter out of range is refused on every route and transport, naming the field and its range."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from media_server.engine.parameters import PARAMETERS

OUT_OF_RANGE: dict[str, list[Any]] = {
    "speed": [0, 9, -1.5, 1e308],
    "temperature": [-0.1, 50.0, 1e308],
    "top_p": [0, 1.5, -1],
    "top_k": [-1, 10**6, 2.5],
    "repetition_penalty": [0.5, 1e4],
    "seed": [-1, 2**64, 0.5],
}
ROUTES = {
    "/v1/audio/speech": {"model": "tts-1", "voice": "alloy", "input": "Hello there."},
    "/tts": {"text": "Hello there."},
    "/tts/stream": {"text": "Hello there."},
    "/tts/pcm": {"text": "Hello there."},
}
CASES = [(route, name, value) for route in ROUTES for name, values in OUT_OF_RANGE.items() for value in values]


def test_the_table_covers_every_parameter_tested() -> None:
    assert set(OUT_OF_RANGE) == set(PARAMETERS)


@pytest.mark.asyncio
@pytest.mark.parametrize(("route", "name", "value"), CASES, ids=[f"{r}-{n}-{v}" for r, n, v in CASES])
async def test_out_of_range_is_a_400_naming_the_field_and_range(
    server_url: str, route: str, name: str, value: Any
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(server_url + route, json={**ROUTES[route], name: value}) as response:
            status = response.status
            body = await response.json()
    assert status == 400, body
    message = body["error"]["message"]
    assert message.startswith(f"{name}:")
    assert PARAMETERS[name].describe() in message or "must be a" in message  # a range, or the wrong type


@pytest.mark.asyncio
async def test_the_session_protocol_refuses_an_out_of_range_speed(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        await ws.send_json({"type": "speak", "text": "Hello there.", "id": "fast", "speed": 40})
        event = json.loads((await ws.receive()).data)
    assert event["type"] == "error" and event["code"] == "invalid_request"
    assert event["message"] == f"speed: 40.0 is outside {PARAMETERS['speed'].describe()}"
