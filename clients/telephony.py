"""Fake telephony platforms, written from each protocol's public specification: the far end of the server's
call bridges, for the tests and the load harness (no vendor account is needed, or possible, here).

- `WebSocketPeer` over a `Platform`: Twilio Media Streams, Telnyx media streaming, Plivo audio
  streams and the Vonage Voice API's websocket each open the socket with their own first messages,
  send the caller's audio every 20 ms, and get speech back in their own shape; jambonz's streaming
  TTS socket and a call's control channel (`/ws/calls/{id}`) are platforms with no opening and no
  caller audio.
- `AudioSocketPeer`: Asterisk's side of an AudioSocket TCP connection (kind, 16-bit big-endian length,
  payload; the UUID first, then slin audio).

Each records what it receives with its arrival time (`Recording`: audio frames apart from the other
messages) and lets its user wait for a condition on it without sleeping. `controlled_call` opens a new call
of any protocol on a `CallServer` with its control channel, as an agent drives it (`speak`, `event`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

FRAME_S = 0.020
Message = dict[str, Any]


@dataclass
class Recording:
    """What a peer got: audio frames and other messages, each with its arrival time (monotonic seconds)."""

    frames: list[tuple[float, bytes]] = field(default_factory=list)
    messages: list[tuple[float, Message]] = field(default_factory=list)
    frames_before: list[int] = field(default_factory=list)
    """For each message, how many frames came before it."""
    closed: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add_frame(self, frame: bytes) -> None:
        self.frames.append((time.monotonic(), frame))
        self._changed.set()

    def add_message(self, message: Message) -> None:
        self.messages.append((time.monotonic(), message))
        self.frames_before.append(len(self.frames))
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    def of(self, key: str, value: Any) -> list[Message]:
        """The messages whose `key` is `value`, in order."""
        return [message for _, message in self.messages if message.get(key) == value]

    def frames_before_each(self, key: str, value: Any) -> list[int]:
        """For each message whose `key` is `value`, how many frames came before it."""
        return [
            before
            for (_, message), before in zip(self.messages, self.frames_before, strict=True)
            if message.get(key) == value
        ]

    async def wait_count(self, key: str, value: Any, count: int, timeout_s: float = 20.0) -> None:
        """Return once `count` messages whose `key` is `value` have come."""
        await self.wait_for(lambda: len(self.of(key, value)) >= count, timeout_s)

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
        """Return once `condition()` holds; TimeoutError after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


def _silence_payload(size: int, byte: bytes = b"\xff") -> str:
    return base64.b64encode(byte * size).decode()


@dataclass(frozen=True)
class Platform:
    """One protocol's side of a media WebSocket, as its public documentation describes it."""

    name: str
    path: str
    opening: Callable[[str], list[Message]]
    """The messages the platform sends first, for a call id."""
    caller_audio: Callable[[], str | bytes] | None
    """One 20 ms frame of the caller's audio (silence) as the platform sends it; None: it sends none."""
    audio_of: Callable[[Message], str | None]
    """The base64 audio a JSON message from the server carries, if it is audio."""


def _inbound_media() -> str:
    """A 20 ms frame of the caller's silence as a Twilio, Telnyx or Plivo `media` event."""
    return json.dumps({"event": "media", "media": {"track": "inbound", "payload": _silence_payload(160)}})


def _media_payload(message: Message) -> str | None:
    media = message.get("media")
    if message.get("event") in ("media", "playAudio") and isinstance(media, dict):
        payload = media.get("payload")
        return payload if isinstance(payload, str) else None
    return None


def _no_audio(message: Message) -> None:
    return None


TWILIO = Platform(
    "twilio",
    "/ws/telephony",
    lambda call_id: [
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ" + call_id,
            "start": {"streamSid": "MZ" + call_id, "callSid": call_id, "tracks": ["inbound"]},
        },
    ],
    _inbound_media,
    _media_payload,
)
TELNYX = Platform(
    "telnyx",
    "/ws/telnyx",
    lambda call_id: [
        {"event": "connected", "version": "1.0.0"},
        {
            "event": "start",
            "sequence_number": "1",
            "stream_id": "stream-" + call_id,
            "start": {
                "call_control_id": call_id,
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
            },
        },
    ],
    _inbound_media,
    _media_payload,
)
PLIVO = Platform(
    "plivo",
    "/ws/plivo",
    lambda call_id: [
        {
            "event": "start",
            "sequenceNumber": 1,
            "start": {
                "callId": call_id,
                "streamId": "stream-" + call_id,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
            },
        }
    ],
    _inbound_media,
    _media_payload,
)
VONAGE = Platform(
    "vonage",
    "/ws/vonage",
    lambda call_id: [{"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "call_id": call_id}],
    lambda: b"\x00" * 640,
    _no_audio,
)
JAMBONZ = Platform("jambonz", "/ws/jambonz/tts", lambda call_id: [], None, _no_audio)
CONTROL = Platform("control", "/ws/calls/", lambda call_id: [], None, _no_audio)
PLATFORMS = {platform.name: platform for platform in (TWILIO, TELNYX, PLIVO, VONAGE)}


@asynccontextmanager
async def _cancelled_after(tasks: list[asyncio.Task[None]]) -> AsyncIterator[None]:
    """The block, then `tasks` cancelled and awaited."""
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _connect(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None, wait_s: float
) -> aiohttp.ClientWebSocketResponse:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await http.ws_connect(url, headers=headers, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.01)


class WebSocketPeer:
    """A platform's side of a WebSocket to the server: its opening, the caller's audio, a record of the rest."""

    def __init__(self, platform: Platform, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.platform = platform
        self.ws = ws
        self.received = Recording()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        http: aiohttp.ClientSession,
        base_url: str,
        platform: Platform,
        call_id: str,
        query: str = "",
        headers: dict[str, str] | None = None,
        caller_audio: bool = True,
        wait_s: float = 0.0,
    ) -> AsyncIterator[WebSocketPeer]:
        """Connected for the block: the platform's opening sent, its caller audio flowing (when asked). A 404
        (a control channel's call not live yet) is tried again for up to `wait_s`."""
        path = platform.path + call_id if platform is CONTROL else platform.path
        async with await _connect(http, base_url + path + query, headers, wait_s) as ws:
            peer = cls(platform, ws)
            for message in platform.opening(call_id):
                await ws.send_str(json.dumps(message))
            tasks = [asyncio.create_task(peer._read(), name=f"{platform.name}-peer-reader")]
            if caller_audio and platform.caller_audio is not None:
                tasks.append(asyncio.create_task(peer._send_caller_audio(platform.caller_audio), name="caller-audio"))
            async with _cancelled_after(tasks):
                yield peer

    async def send(self, message: Message) -> None:
        await self.ws.send_str(json.dumps(message))

    async def hang_up(self) -> None:
        """Close the socket (the platform hangs up)."""
        await self.ws.close()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    self.received.add_frame(message.data)
                elif message.type == aiohttp.WSMsgType.TEXT:
                    decoded: Message = json.loads(message.data)
                    payload = self.platform.audio_of(decoded)
                    if payload is None:
                        self.received.add_message(decoded)
                    else:
                        self.received.add_frame(base64.b64decode(payload))
        finally:
            self.received.close()

    async def _send_caller_audio(self, frame: Callable[[], str | bytes]) -> None:
        """One frame every 20 ms on a fixed schedule (no drift), as a phone call's media does."""
        started, sent = time.monotonic(), 0
        with contextlib.suppress(ConnectionError):
            while not self.ws.closed:
                data = frame()
                await (self.ws.send_bytes(data) if isinstance(data, bytes) else self.ws.send_str(data))
                sent += 1
                await asyncio.sleep(max(0.0, started + sent * FRAME_S - time.monotonic()))


AUDIOSOCKET_HEADER = struct.Struct(">BH")
AUDIOSOCKET_HANGUP = 0x00
AUDIOSOCKET_UUID = 0x01
AUDIOSOCKET_SLIN = 0x10
AUDIOSOCKET_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000}
"""The signed-linear audio kinds and their rates."""


def audiosocket_message(kind: int, payload: bytes = b"") -> bytes:
    return AUDIOSOCKET_HEADER.pack(kind, len(payload)) + payload


class AudioSocketPeer:
    """Asterisk's side of an AudioSocket connection: frames of the server's audio recorded with their kind
    (`received.frames` holds payloads, `kinds` their kinds), a hang-up recorded as the message `{"kind": 0}`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.received = Recording()
        self.kinds: list[int] = []

    @classmethod
    @asynccontextmanager
    async def open(
        cls, host: str, port: int, call_id: uuid.UUID, audio_kind: int = AUDIOSOCKET_SLIN, caller_audio: bool = True
    ) -> AsyncIterator[AudioSocketPeer]:
        """Connected for the block: the UUID sent, then the caller's audio of `audio_kind` every 20 ms (or
        one frame of it when `caller_audio` is off, as the first message that starts the call)."""
        reader, writer = await asyncio.open_connection(host, port)
        peer = cls(reader, writer)
        frame = audiosocket_message(audio_kind, b"\x00\x00" * round(AUDIOSOCKET_RATES[audio_kind] * FRAME_S))
        writer.write(audiosocket_message(AUDIOSOCKET_UUID, call_id.bytes) + frame)
        tasks = [asyncio.create_task(peer._read(), name="audiosocket-peer-reader")]
        if caller_audio:
            tasks.append(asyncio.create_task(peer._send_caller_audio(frame), name="audiosocket-caller-audio"))
        try:
            async with _cancelled_after(tasks):
                yield peer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def hang_up(self) -> None:
        await self.send(audiosocket_message(AUDIOSOCKET_HANGUP))

    async def _read(self) -> None:
        try:
            while True:
                kind, length = AUDIOSOCKET_HEADER.unpack(await self._reader.readexactly(AUDIOSOCKET_HEADER.size))
                payload = await self._reader.readexactly(length)
                if kind == AUDIOSOCKET_HANGUP:
                    self.received.add_message({"kind": kind})
                else:
                    self.kinds.append(kind)
                    self.received.add_frame(payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.received.close()

    async def _send_caller_audio(self, frame: bytes) -> None:
        started, sent = time.monotonic(), 1
        with contextlib.suppress(ConnectionError):
            while not self._writer.is_closing():
                await asyncio.sleep(max(0.0, started + sent * FRAME_S - time.monotonic()))
                await self.send(frame)
                sent += 1


CALL_PROTOCOLS = ("twilio", "telnyx", "plivo", "vonage", "audiosocket")
CALL_ROUTES = {
    "twilio": "telephony",
    "telnyx": "telnyx",
    "plivo": "plivo",
    "vonage": "vonage",
    "audiosocket": "audiosocket",
}
"""The server's `route` label (metrics) of each call protocol."""
CALL_FRAME_BYTES = {"twilio": 160, "telnyx": 160, "plivo": 160, "vonage": 640, "audiosocket": 320}
"""The size of a 20 ms frame of each call protocol's default audio."""
Peer = WebSocketPeer | AudioSocketPeer


@dataclass(frozen=True)
class CallServer:
    """Where calls go: the server's base URL, and the port of its AudioSocket listener on the URL's host."""

    url: str
    audiosocket_port: int


@asynccontextmanager
async def media_peer(
    http: aiohttp.ClientSession,
    server: CallServer,
    protocol: str | Platform,
    call_id: str,
    caller_audio: bool = True,
    query: str = "",
    audio_kind: int = AUDIOSOCKET_SLIN,
) -> AsyncIterator[Peer]:
    """The platform's side of a new call: `query` on a media URL, the caller's `audio_kind` on AudioSocket."""
    if protocol == "audiosocket":
        host = urlsplit(server.url).hostname or "127.0.0.1"
        async with AudioSocketPeer.open(
            host, server.audiosocket_port, uuid.UUID(call_id), audio_kind, caller_audio=caller_audio
        ) as peer:
            yield peer
    else:
        platform = protocol if isinstance(protocol, Platform) else PLATFORMS[protocol]
        async with WebSocketPeer.open(
            http, server.url, platform, call_id, query=query, caller_audio=caller_audio
        ) as ws_peer:
            yield ws_peer


@asynccontextmanager
async def controlled_call(
    http: aiohttp.ClientSession,
    server: CallServer,
    protocol: str | Platform,
    query: str = "",
    audio_kind: int = AUDIOSOCKET_SLIN,
) -> AsyncIterator[tuple[Peer, WebSocketPeer]]:
    """A new call of `protocol` and its control channel (opened once the call is live)."""
    call_id = str(uuid.uuid4())
    async with (
        media_peer(http, server, protocol, call_id, query=query, audio_kind=audio_kind) as peer,
        WebSocketPeer.open(http, server.url, CONTROL, call_id, wait_s=10.0) as control,
    ):
        yield peer, control


async def event(control: WebSocketPeer, kind: str, utterance_id: str, timeout_s: float = 60.0) -> Message:
    """The control channel's event `kind` about `utterance_id`, once it has come."""

    def found() -> list[Message]:
        return [message for message in control.received.of("type", kind) if message.get("id") == utterance_id]

    await control.received.wait_for(lambda: bool(found()), timeout_s)
    return found()[0]


async def speak(control: WebSocketPeer, text: str, utterance_id: str) -> None:
    await control.send({"type": "speak", "text": text, "id": utterance_id})
