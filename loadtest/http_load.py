"""Closed-loop load on the HTTP and WebSocket routes: N concurrent clients, each sending its next
request as soon as the last one finished, for a set time; one route at a time.

Routes are those of the README's API section (plus the piper baseline's `/synthesize`). Each is probed
first with one short request: a route that answers 404 or 405 is not on this server yet and is
skipped, saying so, as is one whose probe fails. Every request speaks a numbered copy of the same
paragraph (`UniqueTexts`), so no cache can answer it and every route synthesizes alike.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import aiohttp

from loadtest.baseline import SYNTHESIZE_PATH
from loadtest.http_clients import RequestRecord, WebSocketSpeaker, post_chunked, post_sse
from loadtest.profiling import ProfileSummary
from loadtest.resources import CpuMeter, CpuUsage, LoopLagProbe
from loadtest.stats import Distribution, distribution
from loadtest.texts import REST_TEXT, UniqueTexts

OPENAI_RATE = 24_000  # Hz: OpenAI's `pcm` format, and what the WebSocket client asks for
PIPER_RATE = 22_050  # Hz: the bundled voice's native rate, for routes that do not say
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
PROBE_TEXT = "Probe."
RETRY_PAUSE_S = 0.5
MISSING_ROUTE_STATUSES = (404, 405)

Body = Callable[[str], dict[str, Any]]


def _openai(response_format: str, **extra: str) -> Body:
    def body(text: str) -> dict[str, Any]:
        return {
            "model": "tts-1",
            "input": text,
            "voice": "alloy",
            "response_format": response_format,
            **extra,
        }

    return body


def _text(text: str) -> dict[str, Any]:
    return {"text": text}


def _speak(text: str) -> dict[str, Any]:
    return {"type": "speak", "text": text}


@dataclass(frozen=True)
class Route:
    """How to load one route: its path, protocol, body, and sample rate when the answer does not say."""

    name: str
    path: str
    protocol: Literal["chunked", "sse", "ws"]
    body: Body
    rate: int
    wav: bool = False


ROUTES: tuple[Route, ...] = (
    Route("speech-wav", "/v1/audio/speech", "chunked", _openai("wav"), OPENAI_RATE, wav=True),
    Route("speech-pcm", "/v1/audio/speech", "chunked", _openai("pcm"), OPENAI_RATE),
    Route("speech-sse", "/v1/audio/speech", "sse", _openai("pcm", stream_format="sse"), OPENAI_RATE),
    Route("tts", "/tts", "chunked", _text, PIPER_RATE, wav=True),
    Route("tts-stream", "/tts/stream", "sse", _text, PIPER_RATE),
    Route("tts-pcm", "/tts/pcm", "chunked", _text, PIPER_RATE),
    Route("ws", f"/ws/tts?sample_rate={OPENAI_RATE}", "ws", _speak, OPENAI_RATE),
)
PIPER_ROUTE = Route("piper", SYNTHESIZE_PATH, "chunked", _text, PIPER_RATE, wav=True)


@dataclass(frozen=True)
class HttpSummary:
    """A phase's figures: TTFB and total time in ms; throughput as requests and as seconds of audio
    per second of wall time (x real time)."""

    requests: int
    ok: int
    errors: dict[str, int]
    ttfb: Distribution | None
    total: Distribution | None
    server_ttfa: Distribution | None
    audio_s: float
    requests_per_s: float
    audio_x_realtime: float


@dataclass(frozen=True)
class PhaseResult:
    target: str
    route: str
    path: str
    concurrency: int
    duration_s: float
    summary: HttpSummary
    cpu: dict[str, CpuUsage | None]
    loadgen_loop_lag: Distribution | None
    requests: list[RequestRecord] = field(repr=False)
    profile: ProfileSummary | None = None


@dataclass(frozen=True)
class Skipped:
    target: str
    route: str
    reason: str


def summarize(records: list[RequestRecord], wall_s: float) -> HttpSummary:
    ok = [r for r in records if r.ok]
    errors: dict[str, int] = {}
    for record in records:
        if record.error is not None:
            errors[record.error] = errors.get(record.error, 0) + 1
    audio_s = sum(r.audio_s for r in ok)
    return HttpSummary(
        requests=len(records),
        ok=len(ok),
        errors=errors,
        ttfb=distribution([r.ttfb_ms for r in ok if r.ttfb_ms is not None]),
        total=distribution([r.total_ms for r in ok if r.total_ms is not None]),
        server_ttfa=distribution([r.server_ttfa_ms for r in ok if r.server_ttfa_ms is not None]),
        audio_s=round(audio_s, 2),
        requests_per_s=round(len(ok) / wall_s, 3),
        audio_x_realtime=round(audio_s / wall_s, 3),
    )


class _Client:
    """One closed-loop client of one route."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, route: Route, origin: float) -> None:
        self._http = http
        self._url = base_url + route.path
        self._route = route
        self._origin = origin
        self._ws = WebSocketSpeaker(http, self._url) if route.protocol == "ws" else None

    async def request(self, text: str, serial: int) -> RequestRecord:
        route, body = self._route, self._route.body(text)
        if self._ws is not None:
            return await self._ws.speak({**body, "id": f"ws-{serial}"}, route.rate, self._origin)
        if route.protocol == "sse":
            return await post_sse(self._http, self._url, body, route.rate, self._origin)
        return await post_chunked(self._http, self._url, body, route.rate, route.wav, self._origin)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


async def probe(base_url: str, route: Route) -> str | None:
    """Why `route` cannot be loaded on `base_url` (None when one short request works)."""
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        client = _Client(http, base_url, route, time.monotonic())
        try:
            record = await client.request(PROBE_TEXT, 0)
        finally:
            await client.close()
    if record.ok:
        return None
    if record.status in MISSING_ROUTE_STATUSES:
        return f"{route.path} answered {record.status}: the route is not on this server"
    return f"the probe request failed: {record.error}"


async def _loop(
    client: _Client, stop_at: float, texts: UniqueTexts, serials: itertools.count[int], records: list[RequestRecord]
) -> None:
    while time.monotonic() < stop_at:
        record = await client.request(texts(REST_TEXT), next(serials))
        records.append(record)
        if record.status == 0:
            await asyncio.sleep(RETRY_PAUSE_S)


async def run_phase(
    base_url: str,
    route: Route,
    target: str,
    concurrency: int,
    duration_s: float,
    pids: Mapping[str, int | None],
    texts: UniqueTexts,
) -> PhaseResult:
    """`concurrency` clients load `route` for `duration_s` (requests then in flight are finished),
    each request speaking the next of `texts`."""
    records: list[RequestRecord] = []
    serials = itertools.count(1)
    meter = CpuMeter({**pids, "loadgen": os.getpid()})
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=connector) as http:
        origin = time.monotonic()
        clients = [_Client(http, base_url, route, origin) for _ in range(concurrency)]
        meter.start()
        async with LoopLagProbe() as lag:
            await asyncio.gather(*(_loop(c, origin + duration_s, texts, serials, records) for c in clients))
        cpu = meter.stop()
        wall_s = time.monotonic() - origin
        await asyncio.gather(*(client.close() for client in clients))
    return PhaseResult(
        target=target,
        route=route.name,
        path=route.path,
        concurrency=concurrency,
        duration_s=round(wall_s, 1),
        summary=summarize(records, wall_s),
        cpu=cpu,
        loadgen_loop_lag=lag.summary(),
        requests=sorted(records, key=lambda r: r.started_s),
    )


def merge(slices: list[PhaseResult]) -> PhaseResult:
    """Interleaved slices of one route's load as one phase: requests and CPU time pooled over the
    slices' summed wall time (a request's `started_s` stays relative to its slice); the loop lag
    is that of the slice where it was worst."""
    wall_s = sum(s.duration_s for s in slices)
    records = [record for s in slices for record in s.requests]
    cpu: dict[str, CpuUsage | None] = {}
    for name in slices[0].cpu:
        used = [s.cpu.get(name) for s in slices]
        seconds = sum(u.cpu_s for u in used if u is not None)
        cpu[name] = None if None in used else CpuUsage(round(seconds, 2), round(100 * seconds / wall_s, 1))
    lags = [s.loadgen_loop_lag for s in slices if s.loadgen_loop_lag is not None]
    return replace(
        slices[0],
        duration_s=round(wall_s, 1),
        summary=summarize(records, wall_s),
        cpu=cpu,
        loadgen_loop_lag=max(lags, key=lambda lag: lag.p95, default=None),
        requests=records,
    )
