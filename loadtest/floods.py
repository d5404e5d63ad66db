"""Floods of one kind, each run by many clients until told to stop, each counting what the server did.

- `SocketFlood`: WebSocket clients that send and never read (`RawWebSocket`), reconnecting each
  time the server drops them: on `/ws/tts` they ask for speech within the message rate; on
  `/ws/telephony` they start a call, ask for speech, then send twice the message rate of events the
  server does not know, so that each one it takes is answered with an `error` event: their names
  are 1 KB long, one in ten 60 KB.
- `RateProbe`: one telephony client that floods the same way but reads, counting the
  `rate_limited` events the server answers with.
- `SlowBodies`: clients trickling a `/tts` body a byte every few seconds (`trickle_body`).
- `BatchFlood`: closed loops of `/v1/audio/speech` requests, each text unique.

Every HTTP status they get is counted in a shared `StatusTally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from clients.websocket import RawWebSocket, text_frame
from loadtest.answers import Answer, StatusTally, post, status_key
from loadtest.stats import Distribution, distribution
from loadtest.texts import REST_TEXT, UTTERANCES, UniqueTexts
from loadtest.trickle import TrickleEnd, trickle_body

RECONNECT_PAUSE_S = 0.5
TICK_S = 0.1
TELEPHONY = "/ws/telephony"
BIG_NAME_CHARS = 60_000
NAME_CHARS = 1_000
BIG_EVERY = 10
MEDIA = json.dumps({"event": "media", "media": {"payload": ""}})
SLOW_BODY = json.dumps({"text": "This body arrives one byte at a time, far too slowly to be waited for."})
BATCH_ROUTE = "/v1/audio/speech"
BATCH_TIMEOUT = aiohttp.ClientTimeout(total=120)
OPENAI_PCM_BYTES_PER_S = 24_000 * 2
MAX_RETRY_PAUSE_S = 1.0
FAILURE_PAUSE_S = 0.5

Talk = Callable[[int, RawWebSocket, asyncio.Event], Awaitable[None]]


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass(frozen=True)
class SocketFloodResult:
    """Clients that never read: connections they made, messages sent, connections the server dropped
    (and how long each had lasted, s), and connections still open at the end."""

    path: str
    clients: int
    connections: int
    messages_sent: int
    disconnects: int
    seconds_to_disconnect: Distribution | None
    open_at_end: int


class SocketFlood:
    """`clients` non-reading WebSocket clients of `path`, each talking with `talk` until dropped or stopped."""

    def __init__(self, base_url: str, path: str, clients: int, talk: Talk, tally: StatusTally) -> None:
        self._url = base_url
        self._path = path
        self._route = path.split("?", 1)[0]
        self._clients = clients
        self._talk = talk
        self._tally = tally
        self._connections = self._sent = self._disconnects = self._open_at_end = 0
        self._lasted: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._client(index, stop) for index in range(self._clients)))

    async def _client(self, index: int, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                status, ws = await RawWebSocket.connect(self._url, self._path)
            except OSError:
                status, ws = 0, None
            self._tally.record(self._route, Answer(status), "non-reading client's handshake")
            if ws is None:
                await pause(stop, RECONNECT_PAUSE_S)
                continue
            self._connections += 1
            try:
                await self._talk(index, ws, stop)
                self._open_at_end += 1
            except OSError:  # ConnectionResetError, BrokenPipeError: the server dropped the connection
                self._disconnects += 1
                self._lasted.append(time.monotonic() - ws.connected_at)
                await pause(stop, RECONNECT_PAUSE_S)
            finally:
                self._sent += ws.sent
                ws.abort()

    def result(self) -> SocketFloodResult:
        return SocketFloodResult(
            path=self._path,
            clients=self._clients,
            connections=self._connections,
            messages_sent=self._sent,
            disconnects=self._disconnects,
            seconds_to_disconnect=distribution(self._lasted),
            open_at_end=self._open_at_end,
        )


def speaking_non_reader(texts: UniqueTexts, every_s: float, seed: int = 11) -> Talk:
    """Sends a `speak` (a unique text) every `every_s` seconds, forever."""
    rng = random.Random(seed)

    async def talk(index: int, ws: RawWebSocket, stop: asyncio.Event) -> None:
        serial = 0
        while not stop.is_set():
            serial += 1
            speak = {"type": "speak", "text": texts(rng.choice(UTTERANCES)), "id": f"unread-{index}-{serial}"}
            await ws.send(text_frame(json.dumps(speak)))
            await pause(stop, every_s)

    return talk


def telephony_flooder(texts: UniqueTexts, rate_per_s: float) -> Talk:
    """Starts a call, asks it to speak a paragraph, then sends `rate_per_s` unknown events a second,
    named with `NAME_CHARS` characters, one in `BIG_EVERY` with `BIG_NAME_CHARS`."""
    per_tick = max(1, round(rate_per_s * TICK_S))

    async def talk(index: int, ws: RawWebSocket, stop: asyncio.Event) -> None:
        await ws.send(text_frame(json.dumps({"event": "connected", "protocol": "Call"})))
        await ws.send(text_frame(json.dumps({"event": "start", "streamSid": f"flood-{index}"})))
        await ws.send(text_frame(json.dumps({"event": "speak", "text": texts(REST_TEXT)})))
        big = text_frame(json.dumps({"event": "x" * BIG_NAME_CHARS}))
        small = text_frame(json.dumps({"event": "y" * NAME_CHARS}))
        while not stop.is_set():
            for _ in range(per_tick):
                await ws.send(big if ws.sent % BIG_EVERY == 0 else small)
            await pause(stop, TICK_S)

    return talk


@dataclass(frozen=True)
class RateProbeResult:
    """A telephony client that floods and reads: messages sent, `rate_limited` events and other events
    received, and how often the server dropped it."""

    messages_sent: int
    rate_limited_events: int
    other_events: dict[str, int]
    disconnects: int


class RateProbe:
    def __init__(self, base_url: str, rate_per_s: float, tally: StatusTally) -> None:
        self._url = base_url
        self._per_tick = max(1, round(rate_per_s * TICK_S))
        self._tally = tally
        self._sent = self._rate_limited = self._disconnects = 0
        self._events: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                try:
                    ws = await http.ws_connect(self._url + TELEPHONY)
                except aiohttp.WSServerHandshakeError as exc:
                    self._tally.record(TELEPHONY, Answer(exc.status), "rate probe's handshake")
                    await pause(stop, RECONNECT_PAUSE_S)
                    continue
                except (aiohttp.ClientError, OSError):
                    self._tally.record(TELEPHONY, Answer(0), "rate probe's handshake")
                    await pause(stop, RECONNECT_PAUSE_S)
                    continue
                self._tally.record(TELEPHONY, Answer(101), "rate probe's handshake")
                await self._flood(ws, stop)

    async def _flood(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        reader = asyncio.create_task(self._read(ws))
        try:
            while not stop.is_set() and not ws.closed:
                for _ in range(self._per_tick):
                    await ws.send_str(MEDIA)
                    self._sent += 1
                await pause(stop, TICK_S)
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            if not stop.is_set():
                self._disconnects += 1
                await pause(stop, RECONNECT_PAUSE_S)
            await ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            if event.get("event") == "error" and event.get("code") == "rate_limited":
                self._rate_limited += 1
            else:
                self._events[str(event.get("event"))] += 1

    def result(self) -> RateProbeResult:
        return RateProbeResult(self._sent, self._rate_limited, dict(self._events.most_common()), self._disconnects)


@dataclass(frozen=True)
class SlowBodyResult:
    """How trickled bodies ended (see `TrickleEnd`), and how long the ended ones were held (s)."""

    clients: int
    byte_every_s: float
    outcomes: dict[str, int]
    held_s: Distribution | None


class SlowBodies:
    def __init__(self, base_url: str, clients: int, byte_every_s: float, tally: StatusTally) -> None:
        self._url = base_url
        self._clients = clients
        self._every_s = byte_every_s
        self._tally = tally
        self._outcomes: Counter[str] = Counter()
        self._held: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._client(stop) for _ in range(self._clients)))

    async def _client(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                end = await trickle_body(self._url, "/tts", SLOW_BODY.encode(), self._every_s, stop)
            except OSError as exc:
                end = TrickleEnd(f"connect failed: {type(exc).__name__}", 0.0, 0)
            self._outcomes[end.outcome] += 1
            if end.outcome != "unfinished":
                self._held.append(end.held_s)
                status = int(end.outcome) if end.outcome.isdigit() else 0
                self._tally.record("/tts", Answer(status), "slow body", end.outcome)
            if not end.outcome.isdigit():
                await pause(stop, RECONNECT_PAUSE_S)

    def result(self) -> SlowBodyResult:
        return SlowBodyResult(
            self._clients, self._every_s, dict(self._outcomes.most_common()), distribution(self._held)
        )


@dataclass(frozen=True)
class BatchFloodResult:
    """Closed loops of batch requests: answers by status, seconds of audio received, answers a second."""

    loops: int
    statuses: dict[str, int]
    audio_s: float
    answers_per_s: float


class BatchFlood:
    def __init__(self, base_url: str, loops: int, texts: UniqueTexts, tally: StatusTally) -> None:
        self._url = base_url
        self._loops = loops
        self._texts = texts
        self._tally = tally
        self._statuses: Counter[str] = Counter()
        self._audio_bytes = 0
        self._started = self._stopped = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        self._started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=self._loops)
        try:
            async with aiohttp.ClientSession(timeout=BATCH_TIMEOUT, connector=connector) as http:
                await asyncio.gather(*(self._loop(http, stop) for _ in range(self._loops)))
        finally:
            self._stopped = time.monotonic()

    async def _loop(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            body = {"model": "tts-1", "input": self._texts(REST_TEXT), "voice": "alloy", "response_format": "pcm"}
            answer = await post(http, self._url, BATCH_ROUTE, self._tally, json.dumps(body), "batch request")
            self._statuses[status_key(answer.status, answer.code)] += 1
            if answer.status == 200:
                self._audio_bytes += answer.body_bytes
            elif answer.status == 503:
                await pause(stop, min(answer.retry_after_s or MAX_RETRY_PAUSE_S, MAX_RETRY_PAUSE_S))
            else:
                await pause(stop, FAILURE_PAUSE_S)

    def result(self) -> BatchFloodResult:
        wall_s = max((self._stopped or time.monotonic()) - self._started, 1e-9)
        return BatchFloodResult(
            loops=self._loops,
            statuses=dict(self._statuses.most_common()),
            audio_s=round(self._audio_bytes / OPENAI_PCM_BYTES_PER_S, 1),
            answers_per_s=round(sum(self._statuses.values()) / wall_s, 2),
        )
