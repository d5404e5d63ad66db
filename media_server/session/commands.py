"""What a client asks of a session, as typed commands parsed from its JSON messages.

The data channel and the WebSocket share one message protocol (DESIGN
section 4): `speak`, `append`, `flush`, `cancel`, named by a `type` field.
`parse_command` checks a message's size, decodes it with the bounded JSON
decoder and validates it into a `Command`; a transport whose messages name
their kind in another field (telephony's `event`) decodes with
`decode_message` and builds the command with `to_command`. Every refusal is
an InvalidRequest that names the field. The events that go the other way are
in `events.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from media_server.engine.parameters import LOCATORS, dictionary_locators, flag
from media_server.engine.types import DictionaryLocator
from media_server.errors import InvalidRequest
from media_server.json_input import decode_json

COMMAND_TYPES = ("speak", "append", "flush", "cancel")
MAX_ID_CHARS = 128


@dataclass(frozen=True)
class Speak:
    """Speak a whole utterance."""

    text: str
    id: str
    voice: str | None
    speed: float
    ssml: bool = False
    dictionaries: tuple[DictionaryLocator, ...] = ()


@dataclass(frozen=True)
class Append:
    """Add streamed text to the open utterance (opening one, in `voice` at `speed`), spoken clause by clause."""

    text: str
    voice: str | None
    dictionaries: tuple[DictionaryLocator, ...] = ()
    speed: float = 1.0


@dataclass(frozen=True)
class Flush:
    """Speak what was appended so far and close the open utterance."""


@dataclass(frozen=True)
class Cancel:
    """Barge-in: stop the audio at once and drop every utterance not yet played."""


Command = Speak | Append | Flush | Cancel


def new_utterance_id() -> str:
    return "utt-" + uuid.uuid4().hex[:12]


def parse_command(raw: str | bytes, max_bytes: int) -> Command:
    """Parse one client message; raises InvalidRequest naming what is wrong."""
    return to_command(decode_message(raw, max_bytes, "type"))


def decode_message(raw: str | bytes, max_bytes: int, kind_field: str) -> dict[str, Any]:
    """One client message as a JSON object (with a `kind_field` naming its kind); raises InvalidRequest."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidRequest(f"message: {size} bytes is over the limit of {max_bytes}")
    message = decode_json(raw, "message")
    if not isinstance(message, dict):
        raise InvalidRequest(f"message: expected a JSON object with a {kind_field!r} field")
    return message


def to_command(message: dict[str, Any]) -> Command:
    """A command from an already decoded message object."""
    kind = message.get("type")
    if kind == "speak":
        return Speak(
            text=_text(message),
            id=_id(message) or new_utterance_id(),
            voice=_optional_str(message, "voice"),
            speed=_speed(message),
            ssml=flag("ssml", message.get("ssml")),
            dictionaries=dictionary_locators(message.get(LOCATORS)),
        )
    if kind == "append":
        if flag("ssml", message.get("ssml")):
            raise InvalidRequest("ssml: SSML is spoken whole; send the document in one speak message, not append")
        return Append(
            text=_text(message, allow_empty=True),
            voice=_optional_str(message, "voice"),
            dictionaries=dictionary_locators(message.get(LOCATORS)),
        )
    if kind == "flush":
        return Flush()
    if kind == "cancel":
        return Cancel()
    raise InvalidRequest(f"type: unknown message type {kind!r}; expected one of {', '.join(COMMAND_TYPES)}")


def _text(message: dict[str, Any], allow_empty: bool = False) -> str:
    text = message.get("text")
    if not isinstance(text, str):
        raise InvalidRequest("text: required, a string")
    if not allow_empty and not text.strip():
        raise InvalidRequest("text: must not be empty")
    return text


def _optional_str(message: dict[str, Any], name: str) -> str | None:
    value = message.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name}: must be a string")
    return value


def _id(message: dict[str, Any]) -> str | None:
    utterance_id = _optional_str(message, "id")
    if utterance_id is not None and len(utterance_id) > MAX_ID_CHARS:
        raise InvalidRequest(f"id: {len(utterance_id)} characters is over the limit of {MAX_ID_CHARS}")
    return utterance_id


def _speed(message: dict[str, Any]) -> float:
    speed = message.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise InvalidRequest("speed: must be a number")
    return float(speed)
