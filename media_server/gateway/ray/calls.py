"""What crosses between a Ray gateway and an engine replica: one utterance's call and the items it streams back.

A call is one request the gateway's engine front has checked (voice and
language resolved), cut into text segments at sentence ends, plus where to
start: the first segment still to speak and how many of its samples the
listener already has (a re-issue after a replica died). Times travel as
durations, never as clock readings: a replica's monotonic clock is not the
gateway's, and may be another host's. The one exception is a measurement,
never a decision: each chunk carries the wall-clock time it left the replica,
so the gateway can time its transit (exact on one host; across hosts it
includes their clocks' offset).

The replica streams back, in order:
- `Start(replica, deterministic, timings)` once the first segment's first
  step is done: which replica serves it, whether its audio can be resumed
  mid-segment sample-exactly, and where the time went;
- `Audio(segment, pcm, words, sent_at)` for each chunk, tagged with its
  segment's index (word times from that segment's first sample) and stamped
  with `time.time()` as it goes on the wire;
- `Failure(error)` in place of the rest when the request fails (the
  replica's `MediaServerError` on the wire), after which the stream ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from media_server.engine.types import Pcm, Priority, RequestTimings, SynthesisRequest, WordTiming
from media_server.errors import MediaServerError
from media_server.gateway.wire import (
    Message,
    error_from_wire,
    error_to_wire,
    pcm_from_wire,
    pcm_to_wire,
    request_from_wire,
    request_to_wire,
)
from media_server.text.segmenter import SegmenterPolicy, split_text

SEGMENT_POLICY = SegmenterPolicy(first_segment_words=1_000_000, min_clause_chars=1_000_000)
"""Segments end at sentence ends (the first one may end at a clause, and a sentence longer than the segmenter's
`max_chars` is cut at a word): the segmenter's rules for streamed text, without its early first cut by words."""


def segments_of(text: str) -> list[str]:
    """`text` as the segments a call carries, in order, whitespace collapsed and nothing else dropped."""
    return split_text(text, SEGMENT_POLICY) or [text]


@dataclass(frozen=True)
class Call:
    """One streaming call: a checked request, its segments, and where in them to start."""

    request: SynthesisRequest
    segments: tuple[str, ...]
    first_segment: int = 0
    skip_samples: int = 0
    """Samples of `first_segment` the listener already has (only when the backend is deterministic)."""

    def to_wire(self, now: float | None = None) -> Message:
        now = time.monotonic() if now is None else now
        deadline = self.request.deadline
        return {
            "request": request_to_wire(replace(self.request, received_at=0.0, deadline=None)),
            "age_s": now - self.request.received_at,
            "deadline_in_s": None if deadline is None else deadline - now,
            "segments": list(self.segments),
            "first_segment": self.first_segment,
            "skip_samples": self.skip_samples,
        }

    @staticmethod
    def priority_on_wire(fields: Message) -> Priority:
        """A call's priority, read from its wire form without decoding the rest (the router ranks replicas by it)."""
        return Priority(fields["request"]["priority"])

    @classmethod
    def from_wire(cls, fields: Message, now: float | None = None) -> Call:
        now = time.monotonic() if now is None else now
        request = request_from_wire(fields["request"])
        deadline_in_s = fields["deadline_in_s"]
        request = replace(
            request,
            received_at=now - float(fields["age_s"]),
            deadline=None if deadline_in_s is None else now + float(deadline_in_s),
        )
        return cls(
            request=request,
            segments=tuple(str(segment) for segment in fields["segments"]),
            first_segment=int(fields["first_segment"]),
            skip_samples=int(fields["skip_samples"]),
        )


@dataclass(frozen=True)
class Start:
    replica: str
    deterministic: bool
    timings: RequestTimings


@dataclass(frozen=True)
class Audio:
    segment: int
    pcm: Pcm
    words: tuple[WordTiming, ...] = ()
    """The words whose start is in `pcm`, timed from their segment's first sample."""
    sent_at: float | None = None
    """The replica's wall-clock time when the chunk went on the wire (set on the receiving side only)."""


@dataclass(frozen=True)
class Failure:
    error: MediaServerError


Item = Start | Audio | Failure


def item_to_wire(item: Item) -> tuple[Any, ...]:
    """A streamed item as plain values (small tuples: each chunk crosses the cluster)."""
    match item:
        case Start():
            timings = item.timings
            return ("start", item.replica, item.deterministic, timings.text_prep_s, timings.queue_wait_s,
                    timings.first_step_s)  # fmt: skip
        case Audio():
            words = [(word.word, word.start_s, word.end_s, word.estimated) for word in item.words]
            return ("audio", item.segment, pcm_to_wire(item.pcm), words, time.time())
        case Failure():
            return ("error", error_to_wire(item.error))


def item_from_wire(fields: tuple[Any, ...]) -> Item:
    kind = fields[0]
    if kind == "audio":
        words = tuple(
            WordTiming(str(w), float(start), float(end), bool(guessed)) for w, start, end, guessed in fields[3]
        )
        return Audio(segment=int(fields[1]), pcm=pcm_from_wire(fields[2]), words=words, sent_at=float(fields[4]))
    if kind == "start":
        timings = RequestTimings(float(fields[3]), float(fields[4]), float(fields[5]))
        return Start(replica=str(fields[1]), deterministic=bool(fields[2]), timings=timings)
    if kind == "error":
        return Failure(error_from_wire(fields[1]))
    raise ValueError(f"unknown item kind {kind!r} from an engine replica")
