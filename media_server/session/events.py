"""What a session tells its client, as typed values: one frozen dataclass per event.

The session emits these objects to its event sink and never JSON; each
transport writes them in its own protocol. The data channel and `/ws/tts`
share one, `to_json` (`{"type": kind, **fields}`, the README's API section), and
`json_sink` is the sink that speaks it; telephony writes
`{"event": kind, "streamSid": ..., **fields}`. `kind` and `fields()` are an
event's protocol name and body, in the order they go on the wire.

`Ended` has no message of its own in the shared protocol: it says an
utterance's last audio has left (after its `done`, or after the `error` that
failed it; a cancelled utterance does not end this way), which telephony
marks with a `mark` named after the utterance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Started:
    """Synthesis of an utterance has begun, in this voice and language."""

    kind: ClassVar[str] = "started"
    id: str
    voice: str
    language: str

    def fields(self) -> dict[str, Any]:
        return {"id": self.id, "voice": self.voice, "language": self.language}


@dataclass(frozen=True)
class AudioStart:
    """An utterance's first sample left the output, `ttfa_ms` after its text arrived."""

    kind: ClassVar[str] = "audio_start"
    id: str
    ttfa_ms: float

    def fields(self) -> dict[str, Any]:
        return {"id": self.id, "ttfa_ms": self.ttfa_ms}


@dataclass(frozen=True)
class Word:
    """A word of an utterance's text as written, and when it is said: ms from the utterance's first sample."""

    word: str
    start_ms: int
    end_ms: int
    estimated: bool = False

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"word": self.word, "start_ms": self.start_ms, "end_ms": self.end_ms}
        if self.estimated:
            fields["estimated"] = True
        return fields


@dataclass(frozen=True)
class Words:
    """Words whose first sample just left the output (sent as their audio plays, never before)."""

    kind: ClassVar[str] = "words"
    id: str
    words: tuple[Word, ...]

    def fields(self) -> dict[str, Any]:
        return {"id": self.id, "words": [word.fields() for word in self.words]}


@dataclass(frozen=True)
class Done:
    """An utterance's last sample left the output; `audio_ms` of audio left in all."""

    kind: ClassVar[str] = "done"
    id: str
    audio_ms: int

    def fields(self) -> dict[str, Any]:
        return {"id": self.id, "audio_ms": self.audio_ms}


@dataclass(frozen=True)
class Cancelled:
    """An utterance was cut by a cancel after `played_ms` of it played (id None: nothing was in progress);
    `spoken_text` is its words that had played whole (`end_ms` at or before `played_ms`)."""

    kind: ClassVar[str] = "cancelled"
    id: str | None
    played_ms: int
    spoken_text: str = ""

    def fields(self) -> dict[str, Any]:
        return {"id": self.id, "played_ms": self.played_ms, "spoken_text": self.spoken_text}


@dataclass(frozen=True)
class Error:
    """A refused message or a failed utterance (`id`): the error's wire code and message."""

    kind: ClassVar[str] = "error"
    code: str
    message: str
    id: str | None = None
    retry_after_s: float | None = None
    estimated_ttfa_ms: int | None = None

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.id is not None:
            fields["id"] = self.id
        if self.retry_after_s is not None:
            fields["retry_after_s"] = self.retry_after_s
        if self.estimated_ttfa_ms is not None:
            fields["estimated_ttfa_ms"] = self.estimated_ttfa_ms
        return fields


@dataclass(frozen=True)
class Ended:
    """An utterance's last audio left the output, whether it was `done` or failed (not on the shared protocol)."""

    id: str


ClientEvent = Started | AudioStart | Words | Done | Cancelled | Error
"""The events of the protocol the data channel and the WebSocket share."""
SessionEvent = ClientEvent | Ended
EventSink = Callable[[SessionEvent], None]


def to_json(event: ClientEvent) -> str:
    """`event` as the data channel / WebSocket message."""
    return json.dumps({"type": event.kind, **event.fields()})


def json_sink(send: Callable[[str], None]) -> EventSink:
    """The event sink of a data channel / WebSocket: each client event as its JSON message, to `send`."""

    def sink(event: SessionEvent) -> None:
        if not isinstance(event, Ended):
            send(to_json(event))

    return sink
