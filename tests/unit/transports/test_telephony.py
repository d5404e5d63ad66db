"""The Twilio and Telnyx dialects against a fake engine and a fake socket: their events in, their message shapes
out, marks after each utterance and echoed behind the speech before them, `clear` answered after the cancel."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from media_server.errors import Busy
from media_server.session.events import Cancelled, Done, Error
from media_server.session.session import SessionLimits
from media_server.transports.call import ALAW, MULAW, CallAudio, CallOrigin, CallServices
from media_server.transports.call_registry import CallRegistry
from media_server.transports.socket_output import Patience
from media_server.transports.telephony import TELNYX, TWILIO, Dialect, StreamsCall, StreamsWire
from tests.fakes import CHUNK, FakeEngine, FakeObserver, until

LIMITS = SessionLimits(
    max_text_chars=200, max_message_bytes=4096, messages_per_second=0, max_queued_utterances=8, first_segment_words=6
)
MULAW_8K = CallAudio(MULAW, 8000)
TWILIO_OPENING = ({"event": "connected", "protocol": "Call"}, {"event": "start", "start": {"streamSid": "MZ1"}})


class Socket:
    """The far end: every message the call sent, decoded."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.gave_up: list[str] = []

    async def send_text(self, text: str) -> None:
        self.received.append(json.loads(text))

    def kinds(self) -> list[str]:
        return [message["event"] for message in self.received]

    def has(self, **fields: Any) -> bool:
        return any(fields.items() <= message.items() for message in self.received)


@asynccontextmanager
async def stream(
    engine: FakeEngine | None = None,
    dialect: Dialect = TWILIO,
    audio: CallAudio = MULAW_8K,
    opening: tuple[dict[str, Any], ...] = TWILIO_OPENING,
) -> AsyncIterator[tuple[StreamsCall, Socket]]:
    socket = Socket()
    services = CallServices(engine or FakeEngine(), LIMITS, FakeObserver(), Patience(0, 0), CallRegistry())
    wire = StreamsWire(dialect, socket.send_text)
    origin = CallOrigin(services, dialect.route, None, None, socket.gave_up.append)
    telephony = StreamsCall(dialect, wire, origin.start(wire, audio), LIMITS.max_message_bytes)
    for message in opening:
        telephony.on_text(json.dumps(message))
    try:
        yield telephony, socket
    finally:
        await telephony.call.close()
    assert socket.gave_up == []


def test_twilio_messages_carry_the_stream_sid_and_show_every_event_telnyx_only_errors() -> None:
    twilio = StreamsWire(TWILIO, Socket().send_text)
    twilio.stream_sid = "MZ1"
    assert twilio.event_message(Done("t1", 40)) == '{"event": "done", "streamSid": "MZ1", "id": "t1", "audio_ms": 40}'
    assert json.loads(twilio.event_message(Cancelled(None, 0)) or "") == {
        "event": "cancelled",
        "streamSid": "MZ1",
        "id": None,
        "played_ms": 0,
        "spoken_text": "",
    }
    telnyx = StreamsWire(TELNYX, Socket().send_text)
    assert telnyx.event_message(Done("t1", 40)) is None
    assert telnyx.mark_message("t1") == '{"event": "mark", "mark": {"name": "t1"}}'
    assert telnyx.clear_message() == '{"event": "clear"}'
    assert json.loads(telnyx.event_message(Error("busy", "full", id="t2", retry_after_s=1.0)) or "") == {
        "event": "error",
        "code": "busy",
        "message": "full",
        "id": "t2",
        "retry_after_s": 1.0,
    }


@pytest.mark.asyncio
async def test_an_utterance_leaves_as_media_frames_then_done_and_its_mark_then_the_echo() -> None:
    async with stream() as (telephony, socket):
        telephony.on_text(json.dumps({"event": "speak", "text": "Hello caller.", "id": "t1"}))
        telephony.on_text(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": "after-t1"}}))
        telephony.on_text(json.dumps({"event": "media", "media": {"payload": "AAAA"}}))
        await until(lambda: socket.has(event="mark", mark={"name": "after-t1"}))
    kinds = socket.kinds()
    media = kinds.count("media")
    assert kinds == ["started", "audio_start", *["media"] * media, "done", "mark", "mark"]
    assert all(message["streamSid"] == "MZ1" for message in socket.received)
    frames = [base64.b64decode(m["media"]["payload"]) for m in socket.received if m["event"] == "media"]
    assert {len(frame) for frame in frames} == {160}
    done = next(m for m in socket.received if m["event"] == "done")
    assert done["id"] == "t1" and media * 20 == pytest.approx(done["audio_ms"], abs=20)
    assert [m["mark"]["name"] for m in socket.received if m["event"] == "mark"] == ["t1", "after-t1"]


@pytest.mark.asyncio
async def test_clear_cancels_answers_clear_and_then_echoes_the_marks_waiting() -> None:
    later = asyncio.Event()
    async with stream(FakeEngine(scripts={"Long.": [4 * CHUNK, later, CHUNK]})) as (telephony, socket):
        telephony.on_text(json.dumps({"event": "speak", "text": "Long.", "id": "t2"}))
        telephony.on_text(json.dumps({"event": "mark", "mark": {"name": "after-t2"}}))
        await until(lambda: socket.has(event="media"))
        telephony.on_text(json.dumps({"event": "clear", "streamSid": "MZ1"}))
        await until(lambda: socket.has(event="mark"))
    after_media = [kind for kind in socket.kinds() if kind != "media"]
    assert after_media == ["started", "audio_start", "clear", "cancelled", "mark"]
    assert socket.has(event="cancelled", id="t2") and socket.has(event="mark", mark={"name": "after-t2"})


@pytest.mark.asyncio
async def test_a_failed_utterance_is_marked_after_its_error() -> None:
    async with stream(FakeEngine(refusals={"Refused.": Busy("the queue is full")})) as (telephony, socket):
        telephony.on_text(json.dumps({"event": "speak", "text": "Refused.", "id": "f"}))
        await until(lambda: socket.has(event="mark"))
    assert socket.kinds() == ["error", "mark"]
    assert socket.has(event="error", code="busy", id="f") and socket.has(event="mark", mark={"name": "f"})


@pytest.mark.asyncio
async def test_bad_events_are_error_events_in_the_telephony_shape() -> None:
    async with stream() as (telephony, socket):
        telephony.on_text(json.dumps({"event": "bogus"}))
        telephony.on_text(json.dumps({"event": "mark", "mark": {}}))
        telephony.on_text("{nope")
        telephony.on_binary(b"\x00\x01")
        await until(lambda: len(socket.received) == 4)
    assert socket.kinds() == ["error"] * 4
    assert socket.received[0] == {
        "event": "error",
        "streamSid": "MZ1",
        "code": "invalid_request",
        "message": "event: unknown event 'bogus'",
    }
    assert socket.received[1]["message"].startswith("mark.name: required")
    assert socket.received[3]["message"] == "message: send JSON text messages, not binary"


@pytest.mark.asyncio
async def test_telnyx_names_the_call_by_its_call_control_id_and_takes_no_text() -> None:
    opening = (
        {"event": "connected", "version": "1.0.0"},
        {"event": "start", "stream_id": "S1", "start": {"call_control_id": "v2:abc", "media_format": {}}},
    )
    async with stream(dialect=TELNYX, audio=CallAudio(ALAW, 8000), opening=opening) as (telephony, socket):
        assert telephony.call.id == "v2:abc"
        telephony.on_text(json.dumps({"event": "speak", "text": "Not here."}))
        await until(lambda: len(socket.received) == 1)
    assert socket.received == [{"event": "error", "code": "invalid_request", "message": "event: unknown event 'speak'"}]
