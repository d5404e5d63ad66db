"""Soak: many short sessions one after another, watching the server for growth that does not flatten.

`run_soak` churns `sessions` sessions, `concurrency` at a time: WebSocket ones
(connect, speak, wait for `done`, close) and, a `webrtc_share` of them, WebRTC
ones (negotiate, speak over the data channel, hear it to `done`, hang up with
`DELETE /rtc/sessions/{id}`, close). The texts are the same dozen turns over
and over, so after the first round the output cache answers them and what
grows is what the sessions leave behind, not the cache.

Meanwhile it samples the server process (`pid`): resident memory and open
file descriptors, every `sample_every_s`. Growth is judged by least-squares
slopes against sessions completed, over the first and the last third of the
run: it flattens when the last third's slope is at most half the first
third's, or is under a floor too small to matter (`RSS_FLOOR_BYTES_PER_SESSION`,
`FDS_FLOOR_PER_SESSION`). A leak keeps the slope where it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import psutil

from clients.rtc import SpeechClient
from loadtest.http_clients import WebSocketSpeaker
from loadtest.texts import UTTERANCES

WS_SAMPLE_RATE = 24000
SESSION_TIMEOUT_S = 60.0
# Slopes under these are noise, whatever the first third did (2000 sessions at the floor: 8 MB, 20 fds).
RSS_FLOOR_BYTES_PER_SESSION = 4096.0
FDS_FLOOR_PER_SESSION = 0.01


@dataclass(frozen=True)
class Sample:
    at_s: float
    sessions: int
    rss_bytes: int
    open_fds: int


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of y over x (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def growth(samples: list[Sample], value: str, floor: float) -> dict[str, Any]:
    """Slopes (per session) of `value` over the first and last third of the run, and whether it flattens."""
    total = samples[-1].sessions
    first = [(s.sessions, float(getattr(s, value))) for s in samples if s.sessions <= total / 3]
    last = [(s.sessions, float(getattr(s, value))) for s in samples if s.sessions >= total * 2 / 3]
    first_slope, last_slope = slope(first), slope(last)
    return {
        "first_third_per_session": round(first_slope, 3),
        "last_third_per_session": round(last_slope, 3),
        "flattens": last_slope <= max(first_slope / 2, floor),
    }


class _Run:
    def __init__(self, url: str, process: psutil.Process) -> None:
        self.url = url
        self.process = process
        self.completed = 0
        self.errors: Counter[str] = Counter()
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.texts = itertools.cycle(UTTERANCES)

    def sample(self) -> None:
        self.samples.append(
            Sample(
                at_s=round(time.monotonic() - self.started, 2),
                sessions=self.completed + sum(self.errors.values()),
                rss_bytes=self.process.memory_info().rss,
                open_fds=self.process.num_fds(),
            )
        )

    async def sample_forever(self, every_s: float) -> None:
        while True:
            self.sample()
            await asyncio.sleep(every_s)

    async def session(self, http: aiohttp.ClientSession, index: int, webrtc: bool) -> None:
        text = next(self.texts)
        try:
            async with asyncio.timeout(SESSION_TIMEOUT_S):
                error = await (self._webrtc(http, index, text) if webrtc else self._websocket(http, index, text))
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.completed += 1
        else:
            self.errors[f"{'webrtc' if webrtc else 'ws'}: {error}"] += 1

    async def _websocket(self, http: aiohttp.ClientSession, index: int, text: str) -> str | None:
        speaker = WebSocketSpeaker(http, self.url + "/ws/tts")
        try:
            message = {"type": "speak", "text": text, "id": f"soak-{index}"}
            return (await speaker.speak(message, WS_SAMPLE_RATE, time.monotonic())).error
        finally:
            await speaker.close()

    async def _webrtc(self, http: aiohttp.ClientSession, index: int, text: str) -> str | None:
        client = SpeechClient(self.url)
        try:
            await client.connect()
            client.send({"type": "speak", "text": text, "id": f"soak-{index}"})
            _, event = await client.wait_first(("done", "error"), f"soak-{index}", timeout_s=SESSION_TIMEOUT_S)
            async with http.delete(f"{self.url}/rtc/sessions/{client.session_id}") as resp:
                hang_up_status = resp.status
            if event["type"] == "error":
                return f"error event {event.get('code')}"
            return None if hang_up_status == 200 else f"hang-up answered {hang_up_status}"
        finally:
            await client.close()


async def run_soak(
    url: str,
    sessions: int,
    concurrency: int,
    pid: int,
    webrtc_share: float = 0.25,
    sample_every_s: float = 1.0,
) -> dict[str, Any]:
    """Churn `sessions` short sessions against the server at `url` (process `pid`), `concurrency` at a time.

    Returns the figures: sessions completed and failed (errors by kind), duration, resident memory and
    open descriptors at start and end, their growth per session in the first and last third, whether
    each flattens, and every sample.
    """
    run = _Run(url, psutil.Process(pid))
    pending = iter(range(sessions))
    every = round(1 / webrtc_share) if webrtc_share > 0 else 0

    async def worker(http: aiohttp.ClientSession) -> None:
        for index in pending:
            await run.session(http, index, webrtc=bool(every) and index % every == every - 1)

    run.sample()
    sampler = asyncio.create_task(run.sample_forever(sample_every_s))
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    run.sample()
    first, last = run.samples[0], run.samples[-1]
    rss = growth(run.samples, "rss_bytes", RSS_FLOOR_BYTES_PER_SESSION)
    fds = growth(run.samples, "open_fds", FDS_FLOOR_PER_SESSION)
    return {
        "sessions": sessions,
        "concurrency": concurrency,
        "webrtc_share": webrtc_share,
        "completed": run.completed,
        "failed": sum(run.errors.values()),
        "errors": dict(run.errors.most_common()),
        "duration_s": round(time.monotonic() - run.started, 1),
        "rss_start_bytes": first.rss_bytes,
        "rss_end_bytes": last.rss_bytes,
        "fds_start": first.open_fds,
        "fds_end": last.open_fds,
        "rss_growth": rss,
        "fds_growth": fds,
        "flattens": rss["flattens"] and fds["flattens"],
        "samples": [asdict(sample) for sample in run.samples],
    }
