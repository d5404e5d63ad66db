"""Typed events on the wire: the data-channel / WebSocket JSON, exactly as clients read it."""

from __future__ import annotations

import json

import pytest

from media_server.session.events import (
    AudioStart,
    Cancelled,
    ClientEvent,
    Done,
    Ended,
    Error,
    SessionEvent,
    Started,
    Word,
    Words,
    json_sink,
    to_json,
)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (Started("u1", "joe", "en"), '{"type": "started", "id": "u1", "voice": "joe", "language": "en"}'),
        (AudioStart("u1", 31.5), '{"type": "audio_start", "id": "u1", "ttfa_ms": 31.5}'),
        (Done("u1", 2400), '{"type": "done", "id": "u1", "audio_ms": 2400}'),
        (
            Cancelled("u1", 380, "Hello there"),
            '{"type": "cancelled", "id": "u1", "played_ms": 380, "spoken_text": "Hello there"}',
        ),
        (Cancelled(None, 0), '{"type": "cancelled", "id": null, "played_ms": 0, "spoken_text": ""}'),
        (
            Words("u1", (Word("$3.50", 0, 910), Word("each", 930, 1200, estimated=True))),
            '{"type": "words", "id": "u1", "words": [{"word": "$3.50", "start_ms": 0, "end_ms": 910}, '
            '{"word": "each", "start_ms": 930, "end_ms": 1200, "estimated": true}]}',
        ),
        (
            Error("invalid_request", "text: must not be empty"),
            '{"type": "error", "code": "invalid_request", "message": "text: must not be empty"}',
        ),
        (
            Error("busy", "full", id="u2", retry_after_s=1.0, estimated_ttfa_ms=900),
            '{"type": "error", "code": "busy", "message": "full", "id": "u2", "retry_after_s": 1.0, '
            '"estimated_ttfa_ms": 900}',
        ),
    ],
)
def test_each_event_is_its_protocol_message(event: ClientEvent, message: str) -> None:
    assert to_json(event) == message
    decoded = json.loads(message)
    assert decoded.pop("type") == event.kind and decoded == event.fields()


def test_the_json_sink_sends_client_events_and_keeps_ended_to_the_session() -> None:
    sent: list[str] = []
    sink = json_sink(sent.append)
    events: list[SessionEvent] = [Done("u1", 20), Ended("u1"), Cancelled(None, 0)]
    for event in events:
        sink(event)
    assert [json.loads(text)["type"] for text in sent] == ["done", "cancelled"]
