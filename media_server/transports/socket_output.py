"""SocketOutput: a session's audio output over a WebSocket-like connection.

Its audio waits in a `PlayoutQueue` (the same queue the WebRTC track plays
from), pulled chunk by chunk by one sender task that also sends the
protocol's text messages, so everything leaves in order: an utterance's
`audio_start` precedes its first audio bytes, the `words` a chunk starts
follow its bytes, and its `done` follows its last ones. `send_now` sends a text before any queued audio (events);
`after_audio` queues one behind the audio queued so far (a mark in the
queue). `write` waits while `max_items` pieces are queued and the sender
itself waits on the socket's flow control, so a client that stops reading
holds a bounded amount of memory (and, through the engine's back-pressure,
no model time). Texts cannot wait that way (they answer the client's own
messages), so they are bounded in bytes instead. A client that leaves more
than `Patience.max_unsent_bytes` of texts unsent, or one send waiting longer
than `Patience.send_timeout_s`, is not reading: the output stops and calls
`on_not_reading`, which disconnects it. Optionally audio is cut into fixed
frames and paced in real time with a small lead (telephony), on absolute
deadlines from an utterance's first frame: a sender held up by the event
loop catches up (no drift) unless it is over `MAX_LAG_S` behind; audio that
was not there in time mid-utterance (the engine fell behind, the far end ran
dry) restarts the schedule and is reported to `on_underrun` with how late
it was. A cut reports the samples of the frames actually sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from media_server.audio.codecs import StreamEncoder
from media_server.audio.pcm import Pcm
from media_server.session.output import (
    Cue,
    PlayoutEvent,
    PlayoutListener,
    PlayoutMark,
    PlayoutQueue,
    PlayoutStart,
    PlayoutWords,
    no_listener,
)

MAX_ITEMS = 8
MAX_LAG_S = 0.5
"""A framed sender further behind than this restarts its schedule rather than burst the backlog."""

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How much a client may leave unread before it counts as not reading (0: no limit)."""

    max_unsent_bytes: int
    send_timeout_s: float


class _NotReading(Exception):
    """The client stopped reading; the message says how that showed."""


@dataclass(frozen=True)
class Framing:
    """Cut audio into `frame_bytes` pieces and send them `lead_s` ahead of real time at most."""

    frame_bytes: int
    frame_s: float
    silence: bytes
    lead_s: float = 0.1


class SocketOutput:
    def __init__(
        self,
        encoder: StreamEncoder,
        send_audio: Callable[[bytes], Awaitable[None]],
        send_text: Callable[[str], Awaitable[None]],
        patience: Patience,
        on_not_reading: Callable[[str], None],
        framing: Framing | None = None,
        max_items: int = MAX_ITEMS,
        on_underrun: Callable[[float], None] | None = None,
    ) -> None:
        self.sample_rate = encoder.sample_rate
        self._encoder = encoder
        self._send_audio = send_audio
        self._send_text = send_text
        self._listener: PlayoutListener = no_listener
        self._patience = patience
        self._on_not_reading = on_not_reading
        self._gave_up = False
        self._framing = framing
        self._frame_samples = round(framing.frame_s * self.sample_rate) if framing is not None else 0
        self._on_underrun = on_underrun
        self._max_items = max_items
        self._queue = PlayoutQueue(self.sample_rate)
        self._urgent: deque[str] = deque()
        self._unsent_text_bytes = 0
        self._changed = asyncio.Event()
        self._room = asyncio.Event()
        self._drained = asyncio.Event()
        self._sending: str | None = None
        """The utterance whose audio the sender is sending; None once it is cut."""
        self._clock_start: float | None = None
        self._clock_sent_s = 0.0
        self._frames_sent = 0
        """Frames sent of the utterance being sent (framed output)."""
        self._starved = False
        """The sender ran out of audio in the middle of an utterance since its last frame."""
        self._header_sent = False
        self._remainder = b""
        self._sender = asyncio.create_task(self._send_forever(), name="socket-output")

    def report_to(self, listener: PlayoutListener) -> None:
        self._listener = listener

    async def write(self, utterance_id: str, pcm: Pcm, cues: Sequence[Cue] = ()) -> None:
        while len(self._queue) >= self._max_items:
            self._room.clear()
            await self._room.wait()
        self._queue.push(utterance_id, pcm, cues)
        self._changed.set()
        self._drained.clear()

    def end(self, utterance_id: str) -> None:
        self._queue.end(utterance_id)
        self._changed.set()
        self._drained.clear()

    def after_audio(self, text: str) -> None:
        """Send `text` once the audio queued so far has been sent."""
        if self._admit_text(text):
            self._queue.mark(text)
            self._changed.set()
            self._drained.clear()

    def send_now(self, text: str) -> None:
        """Send `text` before any queued audio (protocol events)."""
        if self._admit_text(text):
            self._urgent.append(text)
            self._changed.set()
            self._drained.clear()

    def clear(self) -> tuple[str | None, int]:
        cut_id, played = self._queue.clear()
        if self._framing is not None and cut_id is not None and cut_id == self._sending:
            played = min(played, self._frames_sent * self._frame_samples)  # pulled is not yet sent
        self._sending, self._remainder = None, b""  # stops its frames mid-send
        self._room.set()
        return cut_id, played

    def discard(self, utterance_id: str) -> None:
        self._queue.discard(utterance_id)
        if self._sending == utterance_id:
            self._sending, self._remainder = None, b""  # stops its frames mid-send, as `clear` does
        self._room.set()

    async def drained(self) -> None:
        """Return once everything queued so far has been sent (or the output gave up on its client)."""
        waiting = asyncio.create_task(self._drained.wait(), name="socket-output-drained")
        try:
            await asyncio.wait((waiting, self._sender), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting

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
            await self._send_queued()
        except _NotReading as exc:
            self._give_up(str(exc))

    async def _send_queued(self) -> None:
        while True:
            await self._flush_urgent()
            pcm, events = self._queue.next_chunk()
            if pcm is None and not events:
                self._starved = self._sending is not None
                self._changed.clear()
                self._drained.set()
                await self._changed.wait()
                continue
            if len(self._queue) < self._max_items:
                self._room.set()
            for event in events:
                if not isinstance(event, PlayoutWords):
                    await self._passed(event)
            if pcm is not None and self._sending is not None:
                await self._send_pcm(self._sending, pcm)
            for event in events:  # words go once the audio that starts them has
                if isinstance(event, PlayoutWords) and (pcm is None or self._sending == event.utterance_id):
                    self._listener(event)

    async def _passed(self, event: PlayoutEvent) -> None:
        if isinstance(event, PlayoutMark):
            await self._send_text_now(event.label)
        elif isinstance(event, PlayoutStart):
            self._sending, self._frames_sent = event.utterance_id, 0
            self._listener(event)
            await self._flush_urgent()
        else:
            await self._pad_last_frame()
            self._listener(event)
            self._sending = None

    async def _flush_urgent(self) -> None:
        while self._urgent:
            await self._send_text_now(self._urgent.popleft())

    async def _send_pcm(self, utterance_id: str, pcm: Pcm) -> None:
        data = await asyncio.to_thread(self._encode, pcm) if self._encoder.costly else self._encode(pcm)
        if self._sending != utterance_id:
            return  # cut while encoding
        if self._framing is None:
            if data:
                await self._send(self._send_audio, data)
            return
        await self._send_frames(utterance_id, data)

    def _encode(self, pcm: Pcm) -> bytes:
        if self._header_sent:
            return self._encoder.encode(pcm)
        self._header_sent = True
        return self._encoder.header() + self._encoder.encode(pcm)

    async def _pad_last_frame(self) -> None:
        if self._framing is not None and self._remainder and self._sending is not None:
            missing = self._framing.frame_bytes - len(self._remainder)
            await self._send_frames(self._sending, self._framing.silence * missing)

    async def _send_frames(self, utterance_id: str, data: bytes) -> None:
        assert self._framing is not None
        framing = self._framing
        data, self._remainder = self._remainder + data, b""
        whole = len(data) - len(data) % framing.frame_bytes
        data, self._remainder = data[:whole], data[whole:]
        loop = asyncio.get_running_loop()
        for offset in range(0, len(data), framing.frame_bytes):
            now = loop.time()
            self._keep_schedule(now)
            assert self._clock_start is not None
            ahead = self._clock_start + self._clock_sent_s - now
            if ahead > framing.lead_s:
                await asyncio.sleep(ahead - framing.lead_s)
            if self._sending != utterance_id:
                return  # cut mid-utterance
            await self._send(self._send_audio, data[offset : offset + framing.frame_bytes])
            self._clock_sent_s += framing.frame_s
            self._frames_sent += 1
            self._starved = False

    def _keep_schedule(self, now: float) -> None:
        """Start the schedule at an utterance's first frame when it is late (the time between utterances is
        nobody's), restart it when audio came late mid-utterance (an underrun) or the sender is over MAX_LAG_S
        behind; a shorter hold-up of the sender is caught up."""
        if self._clock_start is not None:
            late_s = now - self._clock_start - self._clock_sent_s
            if late_s <= 0 or (self._frames_sent and not self._starved and late_s <= MAX_LAG_S):
                return
            if self._frames_sent and self._on_underrun is not None:
                self._on_underrun(late_s)
        self._clock_start, self._clock_sent_s = now, 0.0
