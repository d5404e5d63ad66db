"""SocketOutput: a conversation's audio output over a WebSocket-like connection.

Audio chunks and protocol events leave in order through one sender task: an
utterance's `audio_start` precedes its first audio bytes and its `done`
follows its last ones. `write` waits while `max_items` are queued and the
sender itself waits on the socket's flow control, so a client that stops
reading holds a bounded amount of memory (and, through the engine's
back-pressure, no model time). Events cannot wait that way (they answer the
client's own messages), so they are bounded in bytes instead. A client that
leaves more than `Patience.max_unsent_bytes` of events unsent, or one send
waiting longer than `Patience.send_timeout_s`, is not reading: the output
stops and calls `on_not_reading`, which disconnects it. Optionally audio is
cut into fixed frames and paced in real time with a small lead (telephony).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from media_server.audio.codecs import StreamEncoder
from media_server.audio.pcm import Pcm
from media_server.audio.playout import PlayoutEvent

MAX_ITEMS = 8

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How much a client may leave unread before it counts as not reading (0: no limit)."""

    max_unsent_bytes: int
    send_timeout_s: float


class _NotReading(Exception):
    """The client stopped reading; the message says how that showed."""


@dataclass(frozen=True)
class _Audio:
    utterance_id: str
    pcm: Pcm


@dataclass(frozen=True)
class _End:
    utterance_id: str


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class Framing:
    """Cut audio into `frame_bytes` pieces and send them `lead_s` ahead of real time at most."""

    frame_bytes: int
    frame_s: float
    silence: bytes
    lead_s: float = 0.1


def _audio_of(item: _Audio | _End | _Text, utterance_id: str) -> bool:
    return isinstance(item, _Audio) and item.utterance_id == utterance_id


class SocketOutput:
    def __init__(
        self,
        encoder: StreamEncoder,
        send_audio: Callable[[bytes], Awaitable[None]],
        send_text: Callable[[str], Awaitable[None]],
        on_event: Callable[[PlayoutEvent], None],
        patience: Patience,
        on_not_reading: Callable[[str], None],
        framing: Framing | None = None,
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.sample_rate = encoder.sample_rate
        self._encoder = encoder
        self._send_audio = send_audio
        self._send_text = send_text
        self._on_event = on_event
        self._patience = patience
        self._on_not_reading = on_not_reading
        self._gave_up = False
        self._framing = framing
        self._max_items = max_items
        self._items: deque[_Audio | _End | _Text] = deque()
        self._urgent: deque[str] = deque()
        self._unsent_text_bytes = 0
        self._changed = asyncio.Event()
        self._room = asyncio.Event()
        self._current: str | None = None
        self._sent = 0
        self._clock_start: float | None = None
        self._clock_sent_s = 0.0
        self._header_sent = False
        self._remainder = b""
        self._sender = asyncio.create_task(self._send_forever(), name="socket-output")

    async def write(self, utterance_id: str, pcm: Pcm) -> None:
        while len(self._items) >= self._max_items:
            self._room.clear()
            await self._room.wait()
        self._push(_Audio(utterance_id, pcm))

    def end(self, utterance_id: str) -> None:
        self._push(_End(utterance_id))

    def after_audio(self, text: str) -> None:
        """Send `text` once the audio queued so far has been sent."""
        if self._admit_text(text):
            self._push(_Text(text))

    def send_now(self, text: str) -> None:
        """Send `text` before any queued audio (protocol events)."""
        if self._admit_text(text):
            self._urgent.append(text)
            self._changed.set()

    def clear(self) -> tuple[str | None, int]:
        cut = (self._current, self._sent)
        self._remainder = b""
        self._items = deque(item for item in self._items if isinstance(item, _Text))
        self._current, self._sent = None, 0
        self._room.set()
        return cut

    def discard(self, utterance_id: str) -> None:
        self._items = deque(item for item in self._items if not _audio_of(item, utterance_id))
        if self._current == utterance_id:
            self._current, self._remainder = None, b""  # stops its frames mid-send, as `clear` does
        self._room.set()

    async def close(self) -> None:
        self._sender.cancel()
        # A sender that was waiting on a socket whose client vanished ends with ConnectionError: nothing to report.
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._sender

    def _admit_text(self, text: str) -> bool:
        """Whether `text` may be queued; past the bound the client is not reading, and it is given up on."""
        if self._gave_up:
            return False
        limit = self._patience.max_unsent_bytes
        if limit and self._unsent_text_bytes + len(text) > limit:
            self._give_up(f"over {limit} bytes of events wait for it to read")
            return False
        self._unsent_text_bytes += len(text)
        return True

    def _give_up(self, why: str) -> None:
        if not self._gave_up:
            self._gave_up = True
            self._on_not_reading(why)

    def _push(self, item: _Audio | _End | _Text) -> None:
        self._items.append(item)
        self._changed.set()

    async def _send(self, send: Callable[[T], Awaitable[None]], data: T) -> None:
        timeout_s = self._patience.send_timeout_s
        try:
            async with asyncio.timeout(timeout_s or None):
                await send(data)
        except TimeoutError:
            raise _NotReading(f"a send waited over {timeout_s:g} s for it to read") from None

    async def _send_text_now(self, text: str) -> None:
        await self._send(self._send_text, text)
        self._unsent_text_bytes -= len(text)

    async def _send_forever(self) -> None:
        try:
            await self._send_items()
        except _NotReading as exc:
            self._give_up(str(exc))

    async def _send_items(self) -> None:
        while True:
            await self._flush_urgent()
            if not self._items:
                self._changed.clear()
                await self._changed.wait()
                continue
            item = self._items.popleft()
            if len(self._items) < self._max_items:
                self._room.set()
            if isinstance(item, _Text):
                await self._send_text_now(item.text)
            elif isinstance(item, _End):
                await self._pad_last_frame()
                self._on_event(PlayoutEvent("end", item.utterance_id, self._sent))
                self._current, self._sent = None, 0
            else:
                await self._send_pcm(item)

    async def _flush_urgent(self) -> None:
        while self._urgent:
            await self._send_text_now(self._urgent.popleft())

    async def _send_pcm(self, item: _Audio) -> None:
        if self._current != item.utterance_id:
            self._current, self._sent = item.utterance_id, 0
            self._on_event(PlayoutEvent("start", item.utterance_id, 0))
            await self._flush_urgent()
        data = await asyncio.to_thread(self._encode, item.pcm)
        if self._current != item.utterance_id:
            return  # cleared while encoding
        self._sent += len(item.pcm)
        if self._framing is None:
            if data:
                await self._send(self._send_audio, data)
            return
        await self._send_frames(data)

    def _encode(self, pcm: Pcm) -> bytes:
        if self._header_sent:
            return self._encoder.encode(pcm)
        self._header_sent = True
        return self._encoder.header() + self._encoder.encode(pcm)

    async def _pad_last_frame(self) -> None:
        if self._framing is not None and self._remainder:
            missing = self._framing.frame_bytes - len(self._remainder)
            await self._send_frames(self._framing.silence * missing)

    async def _send_frames(self, data: bytes) -> None:
        assert self._framing is not None
        framing = self._framing
        data, self._remainder = self._remainder + data, b""
        whole = len(data) - len(data) % framing.frame_bytes
        data, self._remainder = data[:whole], data[whole:]
        loop = asyncio.get_running_loop()
        for offset in range(0, len(data), framing.frame_bytes):
            now = loop.time()
            if self._clock_start is None or now > self._clock_start + self._clock_sent_s:
                self._clock_start, self._clock_sent_s = now, 0.0
            ahead = self._clock_start + self._clock_sent_s - now
            if ahead > framing.lead_s:
                await asyncio.sleep(ahead - framing.lead_s)
            if not self._current:
                return  # cleared mid-utterance
            await self._send(self._send_audio, data[offset : offset + framing.frame_bytes])
            self._clock_sent_s += framing.frame_s
