"""Hostile requests, sent in rounds until told to stop, each counting what came back.

- `MalformedJson`: every payload of `loadtest.hostile_input.malformed` as a body on `/tts`,
  `/v1/audio/speech` and `/rtc/offer`, and as a message on a `/ws/tts` WebSocket and on a WebRTC
  data channel (plus one message over the size limit on the WebSocket). The sockets are kept open
  across rounds, so a payload that kills one shows as a close, not as an answer; after each round
  the data channel must still answer a message.
- `CandidateOffers`: a real aiortc offer with hundreds of extra candidates (over the server's cap:
  it must be refused), and the same offer with a few candidates no server may check (it must be
  accepted with them taken out; the session is hung up at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiortc.exceptions import InvalidStateError

from clients.rtc import SpeechClient, bare_offer
from loadtest.answers import Answer, StatusTally, post, read_answer, status_key
from loadtest.floods import pause
from loadtest.hostile_input import (
    HTTP_ROUTES,
    OVERSIZE_MESSAGE,
    crowded_candidates,
    malformed,
    refused_candidates,
    with_candidates,
)

ANSWER_TIMEOUT_S = 5.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
WS_ROUTE = "/ws/tts"
OFFER_ROUTE = "/rtc/offer"
SERVER_MAX_CANDIDATES = 32  # RTC_MAX_REMOTE_CANDIDATES' default
ACCEPTABLE_EXTRA = 24
ALIVE_CHECK = json.dumps({"type": "speak", "text": " "})


@dataclass(frozen=True)
class MalformedResult:
    """Rounds sent, and how each payload was answered where it was sent (`where: payload` -> outcome -> count):
    an HTTP status, `error <code>` (an error event), `closed <code>`, or `no answer` (none in 5 s)."""

    rounds: int
    outcomes: dict[str, dict[str, int]]


async def _socket_answer(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The first `error` event on `ws`, or how the socket ended, within `ANSWER_TIMEOUT_S`."""
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    event = json.loads(message.data)
                    if event.get("type") == "error":
                        return f"error {event.get('code')}"
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    return f"closed {ws.close_code}"
                elif message.type == aiohttp.WSMsgType.ERROR:
                    return "socket error"
    except TimeoutError:
        return "no answer"


async def _channel_answer(peer: SpeechClient, raw: str) -> str:
    sent = time.monotonic()
    try:
        peer.send_raw(raw)
        _, event = await peer.wait_first(("error",), None, ANSWER_TIMEOUT_S, after=sent)
    except InvalidStateError:
        return "channel closed"
    except TimeoutError:
        return "no answer"
    return f"error {event.get('code')}"


class MalformedJson:
    def __init__(self, base_url: str, tally: StatusTally, every_s: float = 1.0) -> None:
        self._url = base_url
        self._tally = tally
        self._every_s = every_s
        self._bodies = {route: malformed(route, message=False) for route in HTTP_ROUTES}
        self._messages = malformed("message", message=True)
        self._rounds = 0
        self._outcomes: dict[str, Counter[str]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._peer: SpeechClient | None = None

    def _count(self, what: str, outcome: str) -> None:
        self._outcomes.setdefault(what, Counter())[outcome] += 1

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
            try:
                while not stop.is_set():
                    self._rounds += 1
                    for route, bodies in self._bodies.items():
                        for name, body in bodies.items():
                            answer = await post(http, self._url, route, self._tally, body, f"malformed JSON: {name}")
                            self._count(f"POST {route}: {name}", status_key(answer.status, answer.code))
                    await self._websocket_round(http)
                    await self._channel_round(http)
                    await pause(stop, self._every_s)
            finally:
                await self._close(http)

    async def _websocket(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse | None:
        if self._ws is not None and not self._ws.closed:
            return self._ws
        try:
            self._ws = await http.ws_connect(self._url + WS_ROUTE)
            self._tally.record(WS_ROUTE, Answer(101), "malformed JSON socket's handshake")
        except aiohttp.WSServerHandshakeError as exc:
            self._tally.record(WS_ROUTE, Answer(exc.status), "malformed JSON socket's handshake", exc.message)
            self._ws = None
        except (aiohttp.ClientError, OSError):
            self._tally.record(WS_ROUTE, Answer(0), "malformed JSON socket's handshake")
            self._ws = None
        return self._ws

    async def _websocket_round(self, http: aiohttp.ClientSession) -> None:
        for name, text in [*self._messages.items(), OVERSIZE_MESSAGE]:
            ws = await self._websocket(http)
            if ws is None:
                self._count(f"WebSocket: {name}", "no connection")
                continue
            try:
                await ws.send_str(text)
                outcome = await _socket_answer(ws)
            except (aiohttp.ClientError, ConnectionError):
                outcome = "send failed"
            self._count(f"WebSocket: {name}", outcome)

    async def _channel(self, http: aiohttp.ClientSession) -> SpeechClient | None:
        if self._peer is not None:
            return self._peer
        peer = SpeechClient(self._url)
        try:
            await peer.connect()
        except (ConnectionError, TimeoutError, aiohttp.ClientError) as exc:
            self._count("DataChannel: connect", f"failed: {type(exc).__name__}")
            await peer.close()
            return None
        self._peer = peer
        return peer

    async def _channel_round(self, http: aiohttp.ClientSession) -> None:
        peer = await self._channel(http)
        if peer is None:
            return
        for name, text in self._messages.items():
            self._count(f"DataChannel: {name}", await _channel_answer(peer, text))
        alive = await _channel_answer(peer, ALIVE_CHECK)
        self._count("DataChannel: an empty speak afterwards (answered: alive)", alive)
        if not alive.startswith("error"):  # the peer is gone: the next round opens another
            await self._hang_up(http)

    async def _hang_up(self, http: aiohttp.ClientSession) -> None:
        peer, self._peer = self._peer, None
        if peer is None:
            return
        with contextlib.suppress(aiohttp.ClientError):
            async with http.delete(f"{self._url}/rtc/sessions/{peer.session_id}"):
                pass
        await peer.close()

    async def _close(self, http: aiohttp.ClientSession) -> None:
        if self._ws is not None:
            await self._ws.close()
        await self._hang_up(http)

    def result(self) -> MalformedResult:
        return MalformedResult(
            self._rounds, {what: dict(counts.most_common()) for what, counts in sorted(self._outcomes.items())}
        )


@dataclass(frozen=True)
class CandidateOffersResult:
    """Answers to each kind of offer (`kind` -> status -> count) and to hanging up the accepted ones."""

    offers: dict[str, dict[str, int]]
    hang_ups: dict[str, int]


def own_candidates(sdp: str) -> int:
    """Distinct (protocol, address, port) candidates in `sdp`, as the server counts them."""
    found = set()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) >= 6:
                found.add((fields[2].lower(), fields[4], fields[5]))
    return len(found)


class CandidateOffers:
    def __init__(self, base_url: str, tally: StatusTally, crowded: int = 300, every_s: float = 1.0) -> None:
        self._url = base_url
        self._tally = tally
        self._crowded = crowded
        self._every_s = every_s
        self._offers: dict[str, Counter[str]] = {}
        self._hang_ups: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
            while not stop.is_set():
                pc, sdp = await bare_offer()
                await pc.close()  # only its offer is wanted
                extra = max(0, min(ACCEPTABLE_EXTRA, SERVER_MAX_CANDIDATES - 1 - own_candidates(sdp)))
                kinds = {
                    f"{self._crowded} extra candidates (private, public, link-local)": crowded_candidates(
                        self._crowded
                    ),
                    "a few extra candidates no server may check": refused_candidates(extra),
                }
                for kind, lines in kinds.items():
                    await self._offer(http, kind, with_candidates(sdp, lines))
                await pause(stop, self._every_s)

    async def _offer(self, http: aiohttp.ClientSession, kind: str, sdp: str) -> None:
        session_id: Any = None
        try:
            async with http.post(self._url + OFFER_ROUTE, json={"sdp": sdp, "type": "offer"}) as resp:
                if resp.status == 200:
                    answer, message = Answer(200), None
                    session_id = (await resp.json()).get("session_id")
                else:
                    answer, message = await read_answer(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer, message = Answer(0), f"{type(exc).__name__}: {exc}"
        key = self._tally.record(OFFER_ROUTE, answer, f"offer with {kind}", message)
        self._offers.setdefault(kind, Counter())[key] += 1
        if isinstance(session_id, str):
            await self._hang_up(http, session_id)

    async def _hang_up(self, http: aiohttp.ClientSession, session_id: str) -> None:
        route = "/rtc/sessions/{session_id}"  # as the server names it in /metrics
        try:
            async with http.delete(f"{self._url}/rtc/sessions/{session_id}") as resp:
                answer, message = await read_answer(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer, message = Answer(0), f"{type(exc).__name__}: {exc}"
        self._hang_ups[self._tally.record(route, answer, "hanging up an accepted offer", message)] += 1

    def result(self) -> CandidateOffersResult:
        return CandidateOffersResult(
            {kind: dict(counts.most_common()) for kind, counts in self._offers.items()},
            dict(self._hang_ups.most_common()),
        )
