"""A telephony call against a fake engine and a fake socket: Twilio's events in, its own message shape out,
marks after each utterance and echoed behind the speech before them, `clear` answered after the cancel."""

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
from media_server.transports.socket_output import Patience
from media_server.transports.telephony import TelephonyCall, event_message
from tests.fakes import CHUNK, FakeEngine, FakeObserver, until

LIMITS = SessionLimits(
    max_text_chars=200, max_message_bytes=4096, messages_per_second=0, max_queued_utterances=8, first_segment_words=6
)


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
async def call(engine: FakeEngine | None = None) -> AsyncIterator[tuple[TelephonyCall, Socket]]:
    socket = Socket()
    patience = Patience(max_unsent_bytes=0, send_timeout_s=0)
    engine = engine or FakeEngine()
    telephony = TelephonyCall(socket.send_text, engine, LIMITS, FakeObserver(), None, patience, socket.gave_up.append)
    for message in ({"event": "connected", "protocol": "Call"}, {"event": "start", "start": {"streamSid": "MZ1"}}):
        telephony.handle(json.dumps(message))
    try:
        yield telephony, socket
    finally:
        await telephony.close()
    assert socket.gave_up == []


def test_session_events_in_the_telephony_shape() -> None:
    assert event_message(Done("t1", 40), "MZ1") == '{"event": "done", "streamSid": "MZ1", "id": "t1", "audio_ms": 40}'
    assert event_message(Cancelled(None, 0), None) == (
        '{"event": "cancelled", "streamSid": null, "id": null, "played_ms": 0, "spoken_text": ""}'
    )
    assert json.loads(event_message(Error("busy", "full", id="t2", retry_after_s=1.0), "MZ1")) == {
        "event": "error",
        "streamSid": "MZ1",
        "code": "busy",
        "message": "full",
        "id": "t2",
        "retry_after_s": 1.0,
    }


@pytest.mark.asyncio
async def test_an_utterance_leaves_as_media_frames_then_done_and_its_mark_then_the_echo() -> None:
    async with call() as (telephony, socket):
        telephony.handle(json.dumps({"event": "speak", "text": "Hello caller.", "id": "t1"}))
        telephony.handle(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": "after-t1"}}))
        telephony.handle(json.dumps({"event": "media", "media": {"payload": "AAAA"}}))
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
    async with call(FakeEngine(scripts={"Long.": [4 * CHUNK, later, CHUNK]})) as (telephony, socket):
        telephony.handle(json.dumps({"event": "speak", "text": "Long.", "id": "t2"}))
        telephony.handle(json.dumps({"event": "mark", "mark": {"name": "after-t2"}}))
        await until(lambda: socket.has(event="media"))
        telephony.handle(json.dumps({"event": "clear", "streamSid": "MZ1"}))
        await until(lambda: socket.has(event="mark"))
    after_media = [kind for kind in socket.kinds() if kind != "media"]
    assert after_media == ["started", "audio_start", "cancelled", "clear", "mark"]
    assert socket.has(event="cancelled", id="t2") and socket.has(event="mark", mark={"name": "after-t2"})


@pytest.mark.asyncio
async def test_a_failed_utterance_is_marked_after_its_error() -> None:
    async with call(FakeEngine(refusals={"Refused.": Busy("the queue is full")})) as (telephony, socket):
        telephony.handle(json.dumps({"event": "speak", "text": "Refused.", "id": "f"}))
        await until(lambda: socket.has(event="mark"))
    assert socket.kinds() == ["error", "mark"]
    assert socket.has(event="error", code="busy", id="f") and socket.has(event="mark", mark={"name": "f"})


@pytest.mark.asyncio
async def test_bad_events_are_error_events_in_the_telephony_shape() -> None:
    async with call() as (telephony, socket):
        telephony.handle(json.dumps({"event": "bogus"}))
        telephony.handle(json.dumps({"event": "mark", "mark": {}}))
        telephony.handle("{nope")
        await until(lambda: len(socket.received) == 3)
    assert socket.kinds() == ["error"] * 3
    assert socket.received[0] == {
        "event": "error",
        "streamSid": "MZ1",
        "code": "invalid_request",
        "message": "event: unknown event 'bogus'",
    }
    assert socket.received[1]["message"].startswith("mark.name: required")
