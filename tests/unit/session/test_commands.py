"""Client messages into typed commands: the data-channel / WebSocket JSON, telephony's `event` field, refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from media_server.errors import InvalidRequest
from media_server.session.commands import (
    MAX_ID_CHARS,
    Append,
    Cancel,
    Flush,
    Speak,
    decode_message,
    parse_command,
    to_command,
)

MAX_BYTES = 1024


def parse(**message: Any) -> object:
    return parse_command(json.dumps(message), MAX_BYTES)


def test_each_message_type_becomes_its_command() -> None:
    assert parse(type="speak", text="Hi.", id="a", voice="v", speed=1.5) == Speak("Hi.", "a", "v", 1.5)
    assert parse(type="append", text="Hel", voice="v") == Append("Hel", "v")
    assert parse(type="append", text="") == Append("", None)
    assert parse(type="flush") == Flush()
    assert parse(type="cancel", id="ignored") == Cancel()


def test_a_speak_without_an_id_gets_a_fresh_one() -> None:
    first, second = parse(type="speak", text="Hi."), parse(type="speak", text="Hi.")
    assert isinstance(first, Speak) and isinstance(second, Speak)
    assert first.id.startswith("utt-") and second.id.startswith("utt-") and first.id != second.id
    assert (first.voice, first.speed) == (None, 1.0)


def test_bytes_parse_as_text_does() -> None:
    raw = json.dumps({"type": "speak", "text": "Grüße.", "id": "b"})
    assert parse_command(raw.encode(), MAX_BYTES) == parse_command(raw, MAX_BYTES)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{nope", "message: "),
        ("[1]", "message: expected a JSON object with a 'type' field"),
        ('{"type": "shout"}', "type: unknown message type 'shout'; expected one of speak, append, flush, cancel"),
        ('{"text": "Hi."}', "type: unknown message type None"),
        ('{"type": "speak"}', "text: required, a string"),
        ('{"type": "speak", "text": "   "}', "text: must not be empty"),
        ('{"type": "append", "text": 5}', "text: required, a string"),
        ('{"type": "speak", "text": "Hi.", "voice": 3}', "voice: must be a string"),
        ('{"type": "speak", "text": "Hi.", "speed": true}', "speed: must be a number"),
        ('{"type": "speak", "text": "Hi.", "speed": "fast"}', "speed: must be a number"),
        ('{"type": "speak", "text": "Hi.", "id": 7}', "id: must be a string"),
        (
            json.dumps({"type": "speak", "text": "Hi.", "id": "x" * (MAX_ID_CHARS + 1)}),
            f"id: {MAX_ID_CHARS + 1} characters is over the limit of {MAX_ID_CHARS}",
        ),
        ('{"type": "speak", "text": "Hi.", "speed": NaN}', "message: "),
    ],
)
def test_a_bad_message_is_refused_naming_the_field(message: str, error: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_command(message, MAX_BYTES)
    assert refused.value.message.startswith(error)


def test_a_message_over_the_size_limit_is_refused_before_it_is_decoded() -> None:
    raw = json.dumps({"type": "speak", "text": "é" * MAX_BYTES})
    with pytest.raises(InvalidRequest) as refused:
        parse_command(raw, MAX_BYTES)
    assert refused.value.message == f"message: {len(raw.encode())} bytes is over the limit of {MAX_BYTES}"


def test_telephony_names_the_kind_in_another_field() -> None:
    message = decode_message('{"event": "speak", "text": "Hi.", "id": "t1"}', MAX_BYTES, "event")
    assert to_command({**message, "type": message["event"]}) == Speak("Hi.", "t1", None, 1.0)
    with pytest.raises(InvalidRequest, match="'event' field"):
        decode_message('"speak"', MAX_BYTES, "event")
