"""One timed request per streaming protocol: chunked HTTP bodies, Server-Sent Events, WebSocket.

Each returns a `RequestRecord`: time to first audio (TTFB: the first body byte that is audio, the
first SSE event carrying audio, the first binary WebSocket message), total time, and how many
seconds of audio came back, so every route is measured on the same footing.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

SAMPLE_WIDTH = 2  # bytes per s16le mono sample
# Both SSE styles carry base64 PCM in `audio`: OpenAI's `speech.audio.delta` and /tts/stream's `audio`.
SSE_AUDIO_KEY = "audio"
SSE_DONE_TYPES = ("done", "speech.audio.done")
WS_STATUS = 101  # Switching Protocols: the status of an upgraded WebSocket


@dataclass(frozen=True)
class RequestRecord:
    """One request's figures (milliseconds); `status` 0 when no HTTP status came back."""

    started_s: float
    status: int
    error: str | None
    ttfb_ms: float | None
    total_ms: float | None
    audio_s: float
    server_ttfa_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class AudioTally:
    """Counts the seconds of s16le mono audio in a byte stream, after its WAV header if it has one."""

    def __init__(self, sample_rate: int, wav: bool) -> None:
        self.sample_rate = sample_rate
        self._header: bytearray | None = bytearray() if wav else None
        self._bytes = 0

    def feed(self, data: bytes) -> bool:
        """Count `data`; True when it held audio (not only header bytes)."""
        if self._header is not None:
            self._header += data
            end = self._header.find(b"data")
            if end < 0 or len(self._header) < end + 8:
                return False
            if self._header[:4] == b"RIFF":
                (self.sample_rate,) = struct.unpack_from("<I", self._header, 24)
            data, self._header = bytes(self._header[end + 8 :]), None
        self._bytes += len(data)
        return bool(data)

    @property
    def seconds(self) -> float:
        return self._bytes / SAMPLE_WIDTH / self.sample_rate


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class _Timing:
    """The clock of one request: when it started, when its first audio came, how much came."""

    def __init__(self, origin: float, tally: AudioTally) -> None:
        self.origin = origin
        self.tally = tally
        self.started = time.monotonic()
        self.first_audio: float | None = None

    def feed(self, data: bytes) -> None:
        if self.tally.feed(data) and self.first_audio is None:
            self.first_audio = time.monotonic()

    def finished(self, status: int, server_ttfa_ms: float | None = None) -> RequestRecord:
        first = self.first_audio
        return RequestRecord(
            started_s=round(self.started - self.origin, 3),
            status=status,
            error=None,
            ttfb_ms=None if first is None else _ms(first - self.started),
            total_ms=_ms(time.monotonic() - self.started),
            audio_s=round(self.tally.seconds, 3),
            server_ttfa_ms=server_ttfa_ms,
        )

    def failed(self, status: int, error: str) -> RequestRecord:
        return RequestRecord(
            started_s=round(self.started - self.origin, 3),
            status=status,
            error=error,
            ttfb_ms=None,
            total_ms=_ms(time.monotonic() - self.started),
            audio_s=0.0,
        )


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    try:
        body = await resp.json(content_type=None)
        return f"{resp.status} {body['error']['code']}"
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return f"{resp.status} {resp.reason}"


def _exception(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


async def post_chunked(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], rate: int, wav: bool, origin: float
) -> RequestRecord:
    """POST `body` and read an audio body (streamed or whole) as it arrives; the sample rate comes
    from a WAV header or an `X-Sample-Rate` header, else it is `rate`."""
    timing = _Timing(origin, AudioTally(rate, wav))
    try:
        async with http.post(url, json=body) as resp:
            if resp.status != 200:
                return timing.failed(resp.status, await _error_text(resp))
            timing.tally = AudioTally(int(resp.headers.get("X-Sample-Rate", rate)), wav)
            async for data in resp.content.iter_any():
                timing.feed(data)
            return timing.finished(resp.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return timing.failed(0, _exception(exc))


def _sse_audio(event: dict[str, Any]) -> bytes:
    value = event.get(SSE_AUDIO_KEY)
    return base64.b64decode(value, validate=True) if isinstance(value, str) else b""


async def _sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name or the data's `type`, data) of each Server-Sent Event with JSON data."""
    name, data = "", ""
    async for raw in resp.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif not line and data:
            event = json.loads(data)
            yield name or str(event.get("type", "")), event
            name, data = "", ""


async def post_sse(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], rate: int, origin: float
) -> RequestRecord:
    """POST `body` and read Server-Sent Events: audio events (base64 PCM, `sample_rate` in the
    event) until a `done` event; an `error` event fails the request."""
    timing = _Timing(origin, AudioTally(rate, wav=False))
    try:
        async with http.post(url, json=body) as resp:
            if resp.status != 200:
                return timing.failed(resp.status, await _error_text(resp))
            if resp.content_type != "text/event-stream":
                return timing.failed(resp.status, f"not an event stream but {resp.content_type}")
            async for kind, event in _sse_events(resp):
                if kind == "error":
                    return timing.failed(resp.status, f"error event {event.get('code', event)}")
                timing.tally.sample_rate = int(event.get("sample_rate", timing.tally.sample_rate))
                timing.feed(_sse_audio(event))
                if kind in SSE_DONE_TYPES:
                    return timing.finished(resp.status, event.get("ttfa_ms"))
            return timing.failed(resp.status, "the event stream ended without a done event")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # binascii.Error is a ValueError
        return timing.failed(0, _exception(exc))


class WebSocketSpeaker:
    """A WebSocket client of the speech protocol; its connection stays open across requests."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def speak(self, message: dict[str, Any], rate: int, origin: float) -> RequestRecord:
        """Send one `speak` message (with an `id`) and read binary audio until its `done` event."""
        timing = _Timing(origin, AudioTally(rate, wav=False))
        try:
            if self._ws is None or self._ws.closed:
                self._ws = await self._http.ws_connect(self._url)
            await self._ws.send_json(message)
            return await self._read(self._ws, message["id"], timing)
        except aiohttp.WSServerHandshakeError as exc:
            return timing.failed(exc.status, f"{exc.status} {exc.message}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return timing.failed(0, _exception(exc))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    @staticmethod
    async def _read(ws: aiohttp.ClientWebSocketResponse, utterance_id: str, timing: _Timing) -> RequestRecord:
        server_ttfa: float | None = None
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                timing.feed(message.data)
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                return timing.failed(WS_STATUS, f"websocket {message.type.name.lower()}")
            event = json.loads(message.data)
            kind = event.get("type")
            if event.get("id") != utterance_id:
                continue
            if kind == "audio_start":
                server_ttfa = event.get("ttfa_ms")
            elif kind in ("error", "cancelled"):
                return timing.failed(WS_STATUS, f"{kind} event {event.get('code', '')}".rstrip())
            elif kind == "done":
                return timing.finished(WS_STATUS, server_ttfa)
