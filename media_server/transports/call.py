"""The call core every telephony bridge shares: one call's session, paced frames, marks, barge-in and hang-up.

A telephony protocol (Twilio, Telnyx, Plivo and Vonage media streams, Asterisk
AudioSocket) is a thin `Wire` over it: what a frame of audio, a mark, a clear
and (where the protocol shows them) the session's events look like on that
protocol's connection. The core does the rest, once for all of them:

- a `Session` at real-time priority whose audio leaves through a
  `SocketOutput` in 20 ms frames of the call's `CallAudio`, paced in real time
  with the wire's lead; a frame that leaves late in the middle of an utterance
  (the far end ran dry) is counted as an underrun of the call's route;
- marks: a mark named after each utterance once its audio has been sent (where
  the protocol has marks), and a mark the far end sends answered once the
  speech requested before it has been sent, unless it is the far end
  acknowledging one of ours (Twilio and Telnyx send every mark back once it
  has played: answering those would bounce marks forever);
- barge-in (`cancel` from any side, or the protocol's own clear): the
  protocol's clear, so the far end drops what it has buffered, and the
  session's cancel, which stops the audio within a frame and reports in
  `cancelled` how much was sent;
- control channels: once the call has an id it is in the `CallRegistry`, and
  every controller attached to it (`control.py`, `/ws/calls/{id}`) gets the
  session's events and drives it with the data channel's commands;
- hang-up: `close` takes the call out of the registry, ends its control
  channels and closes its session and output; nothing of it keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from media_server.audio.codecs import AlawEncoder, L16Encoder, MulawEncoder, PcmEncoder, StreamEncoder
from media_server.audio.constants import FRAME_MS
from media_server.audio.sample_rates import requested_rate
from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest, MediaServerError, TooManyControllers, UnsupportedFormat
from media_server.session.commands import MAX_ID_CHARS, Cancel, Command
from media_server.session.events import ClientEvent, Ended, SessionEvent
from media_server.session.session import Session, SessionLimits, SessionObserver
from media_server.transports.call_registry import CallRegistry
from media_server.transports.socket_guard import patience
from media_server.transports.socket_output import Framing, Patience, SocketOutput

MEDIA_MESSAGES_PER_S = 50.0
"""A call's media connection carries the caller's audio, 50 frames a second, on top of the message budget."""
MAX_WAITING_MARKS = 64
MAX_REMEMBERED_MARKS = 256
"""Names of marks sent and not yet acknowledged that are kept to recognise their acknowledgement."""
MAX_CONTROLLERS = 4


class CallObserver(SessionObserver, Protocol):
    """What a call reports on top of its session's numbers: its underruns."""

    def record_underrun(self, route: str, silence_s: float) -> None: ...


class Wire(Protocol):
    """A telephony protocol's side of a call: what its messages look like. `None`: the protocol has no such message."""

    @property
    def lead_s(self) -> float:
        """How far ahead of real time audio may be sent (the far end buffers it)."""

    async def send_audio(self, frame: bytes) -> None:
        """Send one encoded 20 ms frame."""

    async def send_text(self, text: str) -> None:
        """Send one of the messages below."""

    def event_message(self, event: ClientEvent) -> str | None: ...

    def mark_message(self, name: str) -> str | None: ...

    def clear_message(self) -> str | None: ...


class Controller(Protocol):
    """A control channel attached to a call."""

    def send_event(self, event: ClientEvent) -> None: ...

    async def call_ended(self) -> None:
        """The call hung up: end the channel."""


@dataclass(frozen=True)
class Encoding:
    """A sample encoding of telephony audio: its encoder, bytes per sample and the byte of silence."""

    name: str
    encoder: Callable[[int], StreamEncoder]
    sample_bytes: int
    silence: bytes


MULAW = Encoding("mulaw", MulawEncoder, 1, b"\xff")
ALAW = Encoding("alaw", AlawEncoder, 1, b"\xd5")
LINEAR16 = Encoding("linear16", PcmEncoder, 2, b"\x00")
"""Signed 16-bit little-endian samples (AudioSocket, Vonage, Plivo's L16, jambonz)."""
LINEAR16_BE = Encoding("linear16 big-endian", L16Encoder, 2, b"\x00")
"""Signed 16-bit samples in network byte order: RTP's L16 (RFC 3551), as Telnyx carries RTP payloads."""


@dataclass(frozen=True)
class CallAudio:
    """How a call's audio leaves: an encoding at a sample rate, in 20 ms frames."""

    encoding: Encoding
    sample_rate: int

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate * FRAME_MS // 1000 * self.encoding.sample_bytes

    def framing(self, lead_s: float) -> Framing:
        return Framing(
            frame_bytes=self.frame_bytes, frame_s=FRAME_MS / 1000, silence=self.encoding.silence, lead_s=lead_s
        )


@dataclass(frozen=True)
class Codec:
    """An encoding a protocol offers under its own name, and the rates it allows (the first is the default)."""

    encoding: Encoding
    rates: tuple[int, ...]


def audio_from_query(query: Mapping[str, str], codecs: Mapping[str, Codec], default: str) -> CallAudio:
    """The `codec` and `sample_rate` a media URL asks for; UnsupportedFormat naming the field and the choices."""
    name = query.get("codec", default)
    codec = codecs.get(name)
    if codec is None:
        raise UnsupportedFormat(f"codec: {name[:40]!r} is not supported; use one of {', '.join(codecs)}")
    return CallAudio(
        codec.encoding, requested_rate(query.get("sample_rate"), "sample_rate", codec.rates, codec.rates[0])
    )


@dataclass(frozen=True)
class CallServices:
    """What every call of one server is built with."""

    engine: Engine
    limits: SessionLimits
    observer: CallObserver
    patience: Patience
    registry: CallRegistry

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: Settings, observer: CallObserver, registry: CallRegistry
    ) -> CallServices:
        limits = SessionLimits.from_settings(settings)
        rate = limits.messages_per_second
        return cls(
            engine=engine,
            limits=dataclasses.replace(limits, messages_per_second=rate + MEDIA_MESSAGES_PER_S if rate else 0.0),
            observer=observer,
            patience=patience(settings),
            registry=registry,
        )


@dataclass(frozen=True)
class CallOrigin:
    """Where a call comes from: its route (the protocol), who brought it, its voice, and how to drop its connection."""

    services: CallServices
    route: str
    owner: str | None
    """The principal the call belongs to; None: any client that passes authentication."""
    voice: str | None
    on_not_reading: Callable[[str], None]

    def start(self, wire: Wire, audio: CallAudio) -> Call:
        return Call(self, wire, audio)


def mark_name(mark: object) -> str:
    """The name of a mark object `{"name": ...}`; InvalidRequest unless it is a string of at most MAX_ID_CHARS."""
    name = mark.get("name") if isinstance(mark, dict) else None
    if not isinstance(name, str) or len(name) > MAX_ID_CHARS:
        raise InvalidRequest(f"mark.name: required, a string of at most {MAX_ID_CHARS} characters")
    return name


class Call:
    """One telephony call: its session, its paced output, its marks, its control channels."""

    def __init__(self, origin: CallOrigin, wire: Wire, audio: CallAudio) -> None:
        services = origin.services
        self.route = origin.route
        self.owner = origin.owner
        self.id: str | None = None
        self._registry = services.registry
        self._observer = services.observer
        self._wire = wire
        self._controllers: list[Controller] = []
        self._waiting_marks = 0
        self._our_marks: OrderedDict[str, None] = OrderedDict()
        self._closed = False
        self.output = SocketOutput(
            audio.encoding.encoder(audio.sample_rate),
            wire.send_audio,
            wire.send_text,
            services.patience,
            origin.on_not_reading,
            audio.framing(wire.lead_s),
            on_underrun=self._underrun,
        )
        self.session = Session(
            services.engine, self.output, self._on_event, services.limits, origin.route, services.observer, origin.voice
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def register(self, call_id: str) -> None:
        """Name the call, so control channels can reach it; InvalidRequest when the id is bad or taken."""
        if self.id is not None:
            raise InvalidRequest(f"call: this call is already named {self.id!r}")
        self._registry.add(call_id, self)
        self.id = call_id

    def admit(self) -> bool:
        """Count one message of the media connection against the call's rate (see `Session.admit`)."""
        return self.session.admit()

    def report_error(self, exc: MediaServerError) -> None:
        self.session.report_error(exc)

    def dispatch(self, command: Command) -> None:
        """Carry out a command from either side; a cancel is a barge-in. Raises MediaServerError when refused."""
        if isinstance(command, Cancel):
            self.barge_in()
        else:
            self.session.dispatch(command)

    def barge_in(self) -> None:
        """Tell the far end to drop what it buffered, stop speaking at once and drop what is queued (the marks
        waiting for that speech are answered after the clear)."""
        self._send(self._wire.clear_message())
        self.session.dispatch(Cancel())

    def mark(self, name: str) -> None:
        """A mark from the far end: an acknowledgement of one of ours is taken; any other is sent back once the
        speech requested before it has been sent."""
        if name in self._our_marks:
            del self._our_marks[name]
            return
        message = self._wire.mark_message(name)
        if message is None:
            raise InvalidRequest("mark: this protocol has no marks")
        if self._waiting_marks >= MAX_WAITING_MARKS:
            raise InvalidRequest(f"mark: {MAX_WAITING_MARKS} marks already wait for speech to be sent")
        self._waiting_marks += 1

        def answer() -> None:  # the speech before the mark has ended: its last frame has just been sent
            self._waiting_marks -= 1
            self._remember(name)
            self.output.send_now(message)

        self.session.after_queued(answer)

    def check_room(self) -> None:
        """TooManyControllers unless another control channel may attach."""
        if len(self._controllers) >= MAX_CONTROLLERS:
            raise TooManyControllers(f"call: already has {MAX_CONTROLLERS} control channels")

    def attach(self, controller: Controller) -> None:
        self.check_room()
        self._controllers.append(controller)

    def detach(self, controller: Controller) -> None:
        self._controllers = [attached for attached in self._controllers if attached is not controller]

    async def close(self) -> None:
        """Hang up: out of the registry, control channels ended, session and output closed."""
        if self._closed:
            return
        self._closed = True
        self._registry.remove(self)
        controllers, self._controllers = self._controllers, []
        try:  # the far end going away cancels its handler, maybe while this runs: each step still runs
            await self.session.close()
        finally:
            try:
                await asyncio.gather(*(controller.call_ended() for controller in controllers))
            finally:
                await self.output.close()

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, Ended):
            message = self._wire.mark_message(event.id)
            if message is not None:
                self._remember(event.id)
                self.output.send_now(message)
            return
        self._send(self._wire.event_message(event))
        for controller in list(self._controllers):
            controller.send_event(event)

    def _send(self, message: str | None) -> None:
        if message is not None:
            self.output.send_now(message)

    def _remember(self, name: str) -> None:
        self._our_marks[name] = None
        self._our_marks.move_to_end(name)
        while len(self._our_marks) > MAX_REMEMBERED_MARKS:
            self._our_marks.popitem(last=False)

    def _underrun(self, late_s: float) -> None:
        self._observer.record_underrun(self.route, late_s)
