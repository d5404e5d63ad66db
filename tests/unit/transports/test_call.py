"""The call core against a fake engine and a fake wire: frames of the call's audio, marks after the speech before
them (and acknowledgements not bounced back), barge-in with what was sent, control channels, the registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from media_server.config import Settings
from media_server.errors import ConfigError, InvalidRequest, TooManyControllers, UnknownCall, UnsupportedFormat
from media_server.session.commands import Speak
from media_server.session.events import ClientEvent, Error
from media_server.session.session import SessionLimits
from media_server.transports.call import (
    LINEAR16,
    MAX_CONTROLLERS,
    MULAW,
    Call,
    CallAudio,
    CallOrigin,
    CallServices,
    Codec,
    audio_from_query,
)
from media_server.transports.call_registry import CallRegistry
from media_server.transports.socket_output import Patience
from tests.fakes import CHUNK, FakeEngine, FakeObserver, until

LIMITS = SessionLimits(
    max_text_chars=200, max_message_bytes=4096, messages_per_second=0, max_queued_utterances=8, first_segment_words=6
)
MULAW_8K = CallAudio(MULAW, 8000)


class FakeWire:
    """The far end: audio frames and texts as sent, in order; messages are readable strings."""

    lead_s = 60.0  # no pacing: frames leave as soon as they are made

    def __init__(self, events: bool = False) -> None:
        self.sent: list[tuple[str, bytes | str]] = []
        self._events = events

    async def send_audio(self, frame: bytes) -> None:
        self.sent.append(("audio", frame))

    async def send_text(self, text: str) -> None:
        self.sent.append(("text", text))

    def event_message(self, event: ClientEvent) -> str | None:
        return f"{event.kind} {event.fields().get('id')}" if self._events or isinstance(event, Error) else None

    def mark_message(self, name: str) -> str | None:
        return f"mark {name}"

    def clear_message(self) -> str | None:
        return "clear"

    def frames(self) -> list[bytes]:
        return [data for kind, data in self.sent if isinstance(data, bytes)]

    def texts(self) -> list[str]:
        return [data for kind, data in self.sent if isinstance(data, str)]


@dataclass
class FakeController:
    events: list[ClientEvent] = field(default_factory=list)
    ended: bool = False

    def send_event(self, event: ClientEvent) -> None:
        self.events.append(event)

    async def call_ended(self) -> None:
        self.ended = True

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


@dataclass
class Line:
    call: Call
    wire: FakeWire
    registry: CallRegistry
    observer: FakeObserver


@asynccontextmanager
async def line(
    engine: FakeEngine | None = None, audio: CallAudio = MULAW_8K, owner: str | None = "key:0", events: bool = False
) -> AsyncIterator[Line]:
    registry, observer, wire = CallRegistry(), FakeObserver(), FakeWire(events)
    services = CallServices(engine or FakeEngine(), LIMITS, observer, Patience(0, 0), registry)
    gave_up: list[str] = []
    call = CallOrigin(services, "telephony", owner, None, gave_up.append).start(wire, audio)
    try:
        yield Line(call, wire, registry, observer)
    finally:
        await call.close()
    assert gave_up == []


def speak(call: Call, text: str, utterance_id: str) -> None:
    call.dispatch(Speak(text=text, id=utterance_id, voice=None, speed=1.0))


@pytest.mark.asyncio
@pytest.mark.parametrize(("audio", "frame_bytes"), [(MULAW_8K, 160), (CallAudio(LINEAR16, 16000), 640)])
async def test_an_utterance_leaves_in_frames_of_the_calls_audio_then_its_mark(
    audio: CallAudio, frame_bytes: int
) -> None:
    async with line(audio=audio) as on:
        controller = FakeController()
        on.call.attach(controller)
        speak(on.call, "Hello.", "t1")
        await until(lambda: "mark t1" in on.wire.texts())
    assert on.wire.frames() and {len(frame) for frame in on.wire.frames()} == {frame_bytes}
    assert on.wire.sent[-1] == ("text", "mark t1")
    assert controller.kinds() == ["started", "audio_start", "done"]


@pytest.mark.asyncio
async def test_a_far_end_mark_is_answered_after_the_speech_before_it_and_acknowledgements_are_not_bounced() -> None:
    async with line() as on:
        speak(on.call, "Hello.", "t1")
        on.call.mark("m1")
        await until(lambda: on.wire.texts() == ["mark t1", "mark m1"])
        assert on.wire.sent.index(("text", "mark t1")) > max(i for i, (k, _) in enumerate(on.wire.sent) if k == "audio")
        # Twilio and Telnyx send each of our marks back once it has played: taken, not echoed again.
        on.call.mark("t1")
        on.call.mark("m1")
        on.call.mark("m2")  # a client's own mark, with nothing waiting: answered at once
        await until(lambda: on.wire.texts()[-1] == "mark m2")
    assert on.wire.texts() == ["mark t1", "mark m1", "mark m2"]


@pytest.mark.asyncio
async def test_barge_in_stops_the_frames_reports_what_was_sent_and_clears_the_far_end() -> None:
    later = asyncio.Event()
    async with line(FakeEngine(scripts={"Long.": [4 * CHUNK, later, CHUNK]})) as on:
        controller = FakeController()
        on.call.attach(controller)
        speak(on.call, "Long.", "t2")
        on.call.mark("after")
        await until(lambda: len(on.wire.frames()) >= 3)
        on.call.barge_in()
        later.set()
        await until(lambda: "mark after" in on.wire.texts())
        sent = len(on.wire.frames())
    [cancelled] = [event for event in controller.events if event.kind == "cancelled"]
    assert cancelled.fields() == {"id": "t2", "played_ms": 20 * sent, "spoken_text": ""}
    assert on.wire.texts() == ["clear", "mark after"]


@pytest.mark.asyncio
async def test_control_channels_get_every_event_up_to_a_limit_and_end_with_the_call() -> None:
    async with line(events=True) as on:
        controllers = [FakeController() for _ in range(MAX_CONTROLLERS)]
        for controller in controllers:
            on.call.attach(controller)
        with pytest.raises(TooManyControllers):
            on.call.attach(FakeController())
        on.call.detach(controllers[-1])
        on.call.report_error(InvalidRequest("event: unknown event 'x'"))
        await until(lambda: "error None" in on.wire.texts())
        on.call.register("CA1")
        assert on.registry.find("CA1", "key:0") is on.call
    assert len(on.registry) == 0 and on.call.closed
    assert [c.ended for c in controllers] == [True] * (MAX_CONTROLLERS - 1) + [False]
    assert [c.kinds() for c in controllers[:-1]] == [["error"]] * (MAX_CONTROLLERS - 1)


@pytest.mark.asyncio
async def test_the_registry_finds_a_call_for_its_owner_only() -> None:
    async with line(owner="key:0") as on, line(owner=None) as anyones:
        on.call.register("CA1")
        anyones.call.register("a0a0a0a0-0000-4000-8000-000000000000")
        assert on.registry.find("CA1", "key:0") is on.call
        for principal in ("key:1", "address:127.0.0.1", None):
            with pytest.raises(UnknownCall):
                on.registry.find("CA1", principal)
        with pytest.raises(UnknownCall):
            on.registry.find("CA2", "key:0")
        assert anyones.registry.find("a0a0a0a0-0000-4000-8000-000000000000", "key:7") is anyones.call
        with pytest.raises(InvalidRequest, match="already named"):
            on.call.register("CA3")
        with pytest.raises(InvalidRequest, match="live call"):
            on.registry.add("CA1", anyones.call)
        with pytest.raises(InvalidRequest, match="at most 128"):
            on.registry.add("x" * 129, anyones.call)


def test_the_audio_a_media_url_asks_for_is_checked_by_name() -> None:
    codecs = {"PCMU": Codec(MULAW, (8000,)), "L16": Codec(LINEAR16, (8000, 16000))}
    assert audio_from_query({}, codecs, "PCMU") == MULAW_8K
    assert audio_from_query({"codec": "L16", "sample_rate": "16000"}, codecs, "PCMU") == CallAudio(LINEAR16, 16000)
    with pytest.raises(UnsupportedFormat, match=r"^codec: 'opus' is not supported; use one of PCMU, L16$"):
        audio_from_query({"codec": "opus"}, codecs, "PCMU")
    with pytest.raises(UnsupportedFormat, match=r"^sample_rate: '16000' is not one of 8000 Hz$"):
        audio_from_query({"sample_rate": "16000"}, codecs, "PCMU")
    with pytest.raises(UnsupportedFormat, match=r"^sample_rate: '-1' is not one of 8000, 16000 Hz$"):
        audio_from_query({"codec": "L16", "sample_rate": "-1"}, codecs, "PCMU")


def test_the_audiosocket_port_is_off_by_default_and_checked_by_name() -> None:
    assert Settings.from_env({}).audiosocket_port == 0
    assert Settings.from_env({"AUDIOSOCKET_PORT": "9092"}).audiosocket_port == 9092
    for bad in ("70000", "-1"):
        with pytest.raises(ConfigError, match=r"AUDIOSOCKET_PORT=.*must be in \[0, 65535\]"):
            Settings.from_env({"AUDIOSOCKET_PORT": bad})
