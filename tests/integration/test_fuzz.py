"""Random and mutated input thrown at a running server: never a 5xx, never a crash, nobody else disturbed.

Hypothesis generates JSON bodies for every POST route (random values, and
valid bodies with fields replaced, dropped or added), raw bytes, mutated SDP
offers (lines dropped, doubled, swapped, rewritten, cut short, noise inserted)
and message sequences for the WebSocket, the telephony socket and the WebRTC
data channel; schemathesis generates requests from `/openapi.json`. Every
reply is checked: HTTP answers are below 500 and errors have the JSON error
shape; a socket or channel still answers a `cancel` (or a telephony `mark`)
after the junk, and every event it sent is a protocol event. Meanwhile a
bystander session speaks utterance after utterance; the last test checks that
each was heard to the end, that the server counted no 500 (clients that hung up
mid-stream included) and that it is healthy.

Runs are reproducible (`derandomize=True`, no example database) and bounded
by `max_examples` to stay within about a minute.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from clients.metrics import internal_errors, scrape
from clients.rtc import SpeechClient, bare_offer

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EVENT_TYPES = {"started", "audio_start", "words", "done", "cancelled", "error"}
REPLY_TIMEOUT_S = 20.0

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
SHORT_TEXT = st.text(max_size=80)
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/tts": {"text": "Fuzzing the whole-file route.", "format": "wav", "speed": 1.0},
    "/tts/stream": {"text": "Fuzzing the event stream.", "format": "pcm", "sample_rate": 16000},
    "/tts/pcm": {"text": "Fuzzing raw audio.", "voice": "default", "language": "auto"},
    "/v1/audio/speech": {"model": "tts-1", "input": "Fuzzing the OpenAI route.", "voice": "alloy"},
    "/rtc/offer": {"sdp": "v=0\r\n", "type": "offer"},
}
TEXT_FIELDS = {"/tts": "text", "/tts/stream": "text", "/tts/pcm": "text", "/v1/audio/speech": "input"}
ANY_TEXT = st.text(st.characters(exclude_categories=()), min_size=1, max_size=60)
FIELD_NAMES = st.sampled_from(
    ["text", "input", "voice", "format", "response_format", "stream_format", "speed", "language", "sample_rate",
     "temperature", "top_p", "top_k", "seed", "model", "instructions", "sdp", "type"]
)  # fmt: skip
COMMANDS = st.sampled_from(["speak", "append", "flush", "cancel", "unknown", ""])


@st.composite
def mutated_body(draw: st.DrawFn, route: str) -> dict[str, Any]:
    """A valid body for `route` with a few fields replaced, dropped or added."""
    body = dict(VALID_BODIES[route])
    for _ in range(draw(st.integers(1, 3))):
        name = draw(FIELD_NAMES | st.sampled_from(sorted(body)) if body else FIELD_NAMES)
        action = draw(st.sampled_from(["replace", "drop", "text"]))
        if action == "drop":
            body.pop(name, None)
        else:
            body[name] = draw(SHORT_TEXT if action == "text" else JSON_VALUES)
    return body


@st.composite
def mutated_sdp(draw: st.DrawFn, base: str) -> str:
    lines = base.split("\r\n")
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "double", "swap", "rewrite", "cut", "noise"]))
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "double":
            lines.insert(index, lines[index])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "rewrite":
            lines[index] = draw(st.text(max_size=60))
        elif action == "cut":
            lines = lines[: index + 1]
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        else:
            at = draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:at] + draw(st.text(min_size=1, max_size=8)) + lines[index][at:]
    return "\r\n".join(lines)


@st.composite
def protocol_message(draw: st.DrawFn) -> str | bytes:
    """One data-channel / WebSocket message: a mutated command, any JSON, text that is not JSON, or bytes."""
    kind = draw(st.sampled_from(["command", "json", "text", "bytes"]))
    if kind == "command":
        message: dict[str, Any] = {"type": draw(COMMANDS)}
        for name in draw(st.lists(st.sampled_from(["text", "id", "voice", "speed"]), max_size=4)):
            message[name] = draw(ANY_TEXT | JSON_VALUES)
        return json.dumps(message)
    if kind == "json":
        return json.dumps(draw(JSON_VALUES))
    if kind == "text":
        return draw(st.text(max_size=200))
    return draw(st.binary(max_size=200))


@dataclass
class Bystander:
    """A WebSocket session that keeps speaking in its own thread while the fuzzing runs.

    Each utterance is new (numbered), so none comes from the audio cache: every one is synthesized.
    """

    url: str
    internal_errors_before: float
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self._speak_forever(),), name="bystander")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=REPLY_TIMEOUT_S * 2)

    async def _speak_forever(self) -> None:
        async with aiohttp.ClientSession() as http, http.ws_connect(self.url + "/ws/tts") as ws:
            while not self._stop.is_set():
                text = f"A bystander keeps talking, line {self.completed + len(self.failures)}."
                await ws.send_json({"type": "speak", "text": text, "id": "b"})
                try:
                    async with asyncio.timeout(REPLY_TIMEOUT_S):
                        outcome = await self._outcome(ws)
                except TimeoutError:
                    outcome = "no reply"
                if outcome == "done":
                    self.completed += 1
                else:
                    self.failures.append(outcome)

    @staticmethod
    async def _outcome(ws: aiohttp.ClientWebSocketResponse) -> str:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(message.data)
                if event["type"] in ("done", "error"):
                    return "done" if event["type"] == "done" else f"error {event}"
        return "socket closed"


@pytest.fixture(scope="module")
def bystander(server_url: str) -> Iterator[Bystander]:
    speaker = Bystander(server_url, internal_errors_before=internal_errors(asyncio.run(scrape(server_url)).samples))
    speaker.start()
    yield speaker
    speaker.stop()


@pytest.fixture(scope="module")
def offer_sdp() -> str:
    async def make() -> str:
        pc, sdp = await bare_offer()
        await pc.close()
        return sdp

    return asyncio.run(make())


async def check_answer(resp: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """Fails on a 5xx or a malformed error; returns the JSON body of a 200 that has one."""
    if resp.status >= 400:
        body = await resp.json()
        assert set(body["error"]) >= {"code", "message"}, body
    assert resp.status < 500, await resp.text()
    if resp.status == 200 and resp.content_type == "application/json":
        answer: dict[str, Any] = await resp.json()
        return answer
    return None


async def post(url: str, path: str, data: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url + path, data=data, headers=headers) as resp:
            answer = await check_answer(resp)
        if answer is not None and "session_id" in answer:
            async with http.delete(url + f"/rtc/sessions/{answer['session_id']}") as resp:
                assert resp.status == 200


@pytest.mark.asyncio
@FUZZ
@given(data=st.data())
async def test_json_bodies(server_url: str, bystander: Bystander, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(sorted(VALID_BODIES)))
    body = data.draw(mutated_body(route) | JSON_VALUES)
    await post(server_url, route, json.dumps(body).encode())


@pytest.mark.asyncio
@FUZZ
@given(route=st.sampled_from(sorted(TEXT_FIELDS)), text=ANY_TEXT)
async def test_any_text(server_url: str, bystander: Bystander, route: str, text: str) -> None:
    """Every code point, control characters and unpaired surrogates included, in an otherwise valid body."""
    await post(server_url, route, json.dumps({**VALID_BODIES[route], TEXT_FIELDS[route]: text}).encode())


@pytest.mark.asyncio
@FUZZ
@given(route=st.sampled_from(sorted(VALID_BODIES)), raw=st.binary(max_size=300))
async def test_raw_bodies(server_url: str, bystander: Bystander, route: str, raw: bytes) -> None:
    await post(server_url, route, raw)


@pytest.mark.asyncio
@FUZZ
@given(data=st.data())
async def test_mutated_offers(server_url: str, bystander: Bystander, offer_sdp: str, data: st.DataObject) -> None:
    offer = {"sdp": data.draw(mutated_sdp(offer_sdp)), "type": "offer", "voice": data.draw(st.none() | JSON_VALUES)}
    await post(server_url, "/rtc/offer", json.dumps(offer).encode())


async def replies_until(ws: aiohttp.ClientWebSocketResponse, key: str, wanted: str) -> None:
    """Reads the socket until an event whose `key` is `wanted`; every text event must be well formed."""
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(message.data)
                assert event[key] in EVENT_TYPES | {wanted, "media", "mark", "clear"}, event
                if event[key] == wanted:
                    return
    raise AssertionError(f"the socket closed ({ws.close_code}) before a {wanted!r} event")


async def send_all(ws: aiohttp.ClientWebSocketResponse, messages: list[str | bytes]) -> None:
    for message in messages:
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_str(message)


@pytest.mark.asyncio
@FUZZ
@given(messages=st.lists(protocol_message(), min_size=1, max_size=8))
async def test_websocket_messages(server_url: str, bystander: Bystander, messages: list[str | bytes]) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/tts") as ws:
        await send_all(ws, messages)
        await ws.send_json({"type": "cancel"})
        await replies_until(ws, "type", "cancelled")


@st.composite
def telephony_message(draw: st.DrawFn) -> str | bytes:
    if draw(st.booleans()):
        return draw(protocol_message())
    event = draw(st.sampled_from(["connected", "start", "media", "mark", "clear", "stop", "speak", "append", "flush"]))
    message: dict[str, Any] = {"event": event}
    for name in draw(st.lists(st.sampled_from(["text", "streamSid", "start", "mark", "media"]), max_size=3)):
        message[name] = draw(SHORT_TEXT | JSON_VALUES)
    return json.dumps(message)


@pytest.mark.asyncio
@FUZZ
@given(messages=st.lists(telephony_message(), min_size=1, max_size=8))
async def test_telephony_messages(server_url: str, bystander: Bystander, messages: list[str | bytes]) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server_url + "/ws/telephony") as ws:
        await send_all(ws, messages)
        await ws.send_json({"event": "clear"})
        await ws.send_json({"event": "mark", "mark": {"name": "probe"}})
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data).get("mark") == {"name": "probe"}:
                    return
        raise AssertionError(f"the socket closed ({ws.close_code}) before the probe mark came back")


@pytest.mark.asyncio
@settings(FUZZ, max_examples=50)
@given(messages=st.lists(protocol_message(), min_size=1, max_size=8))
async def test_data_channel_messages(server_url: str, bystander: Bystander, messages: list[str | bytes]) -> None:
    peer = SpeechClient(server_url)
    await peer.connect()
    try:
        for message in messages:
            peer.send_raw(message.decode("latin-1") if isinstance(message, bytes) else message)
        sent = peer.send({"type": "cancel"})
        await peer.wait_event("cancelled", after=sent, timeout_s=REPLY_TIMEOUT_S)
        assert all(event.get("type") in EVENT_TYPES for _, event in peer.received.events)
    finally:
        await peer.close()


def test_openapi(server_url: str, bystander: Bystander) -> None:
    """Requests schemathesis generates from `/openapi.json`, every operation but the sockets and the page.

    (Its pytest loader, `schemathesis.pytest.from_fixture`, does not run on pytest 9: hence one strategy
    per operation here.)
    """
    schema = schemathesis.openapi.from_url(server_url + "/openapi.json").exclude(path_regex=r"^/ws/").exclude(path="/")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 10

    for operation in operations:

        @settings(max_examples=25, deadline=None, derandomize=True, database=None)
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=server_url, checks=[not_a_server_error])

        call()


@pytest.mark.asyncio
async def test_the_server_is_fine_after_the_fuzzing(server_url: str, bystander: Bystander) -> None:
    bystander.stop()
    assert bystander.failures == [] and bystander.completed > 0
    assert internal_errors((await scrape(server_url)).samples) == bystander.internal_errors_before
    async with aiohttp.ClientSession() as http:
        async with http.get(server_url + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with http.ws_connect(server_url + "/ws/tts") as ws:
            await ws.send_json({"type": "speak", "text": "Still speaking after all that.", "id": "last"})
            await replies_until(ws, "type", "done")
