"""What one spoken utterance looked like from the client: time to first audio, and its stretch.

Definitions (the same words are used in RESULTS.md):

- An *audible* frame is a decoded 20 ms frame whose RMS is over `AUDIBLE_RMS`; the utterance's
  *audible span* runs from its first to its last audible frame.
- *Client TTFA* is text sent -> first audible frame decoded. aiortc's receiver holds 4 frames in
  its jitter buffer before decoding, so the raw figure includes `RECEIVER_DELAY_S` (80 ms) that a
  browser would not add; `client_ttfa_corrected_ms` subtracts it. Both include Piper's quiet
  lead-in (the first frame or two of a sentence are under the audible threshold).
- *Stretch* is the audible span's wall time (last minus first audible frame's arrival, plus one
  frame) minus `done.audio_ms`, the audio the server says it played. Quiet audio at either end
  (a voice's lead-in and tail, unless the server trims them) falls outside the audible span, so
  clean playout can sit well below zero (-100 to -330 ms on an untrimmed Piper voice, about -5 ms
  trimmed): the stretch shows gross underruns, and is kept because listeners hear exactly this.
- *Playout stretch* is the server's own first-to-last-frame time, as the client sees it: the
  arrival of `done` minus the arrival of `audio_start` (the track sends each the moment the
  utterance's first / last sample leaves), minus `done.audio_ms`. With clean playout it lies
  between -20 and 0 ms (measured: -17 to -4 ms on an idle server); every 20 ms frame of silence the
  track had to insert because audio was not ready adds 20 ms.
- An *underrun* is an utterance whose playout stretch exceeds `UNDERRUN_TOLERANCE_MS` (2 frames).
- *Max gap* is the longest wait between two consecutive decoded frames inside the audible span
  (20 ms when smooth); a stall in the server's pacing, or in this client, shows here.
"""

from __future__ import annotations

from dataclasses import dataclass

from clients.rtc import FRAME_S, RECEIVER_DELAY_S, Event, Frame, Received

FRAME_MS = FRAME_S * 1000
UNDERRUN_TOLERANCE_MS = 2 * FRAME_MS


@dataclass(frozen=True)
class Turn:
    """One utterance as a peer lived it: what it sent when, and the events that came back."""

    peer: int
    id: str
    chars: int
    sent_at: float
    outcome: str
    audio_start: Event | None = None
    audio_start_at: float | None = None
    done: Event | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class UtteranceRecord:
    """The measured figures of one utterance (milliseconds; None where it did not get that far)."""

    peer: int
    id: str
    chars: int
    sent_s: float
    outcome: str
    server_ttfa_ms: float | None
    client_ttfa_ms: float | None
    client_ttfa_corrected_ms: float | None
    audio_ms: float | None
    audible_ms: float | None
    stretch_ms: float | None
    playout_stretch_ms: float | None
    max_gap_ms: float | None
    underrun: bool | None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _max_gap_ms(frames: list[Frame], first: Frame, last: Frame) -> float:
    inside = [f.received_at for f in frames if first.index <= f.index <= last.index]
    return _ms(max((b - a for a, b in zip(inside, inside[1:], strict=False)), default=FRAME_S))


def measure(turn: Turn, received: Received, level_start: float, settle_s: float) -> UtteranceRecord:
    """Figures of `turn` from the frames received between its sending and `settle_s` after it ended."""
    until = (turn.ended_at or turn.sent_at) + settle_s
    audible = received.audible(since=turn.sent_at, until=until)
    server_ttfa = turn.audio_start.get("ttfa_ms") if turn.audio_start else None
    audio_ms = float(turn.done["audio_ms"]) if turn.done else None
    client_ttfa = client_ttfa_corrected = stretch = audible_ms = max_gap = playout_stretch = None
    if audible:
        first, last = audible[0], audible[-1]
        client_ttfa = _ms(first.received_at - turn.sent_at)
        client_ttfa_corrected = _ms(first.received_at - RECEIVER_DELAY_S - turn.sent_at)
        audible_ms = round((last.index - first.index + 1) * FRAME_MS, 1)
        max_gap = _max_gap_ms(received.frames, first, last)
        if audio_ms is not None:
            stretch = round(_ms(last.received_at - first.received_at + FRAME_S) - audio_ms, 1)
    if audio_ms is not None and turn.audio_start_at is not None and turn.ended_at is not None:
        playout_stretch = round(_ms(turn.ended_at - turn.audio_start_at) - audio_ms, 1)
    return UtteranceRecord(
        peer=turn.peer,
        id=turn.id,
        chars=turn.chars,
        sent_s=round(turn.sent_at - level_start, 3),
        outcome=turn.outcome,
        server_ttfa_ms=None if server_ttfa is None else float(server_ttfa),
        client_ttfa_ms=client_ttfa,
        client_ttfa_corrected_ms=client_ttfa_corrected,
        audio_ms=audio_ms,
        audible_ms=audible_ms,
        stretch_ms=stretch,
        playout_stretch_ms=playout_stretch,
        max_gap_ms=max_gap,
        underrun=None if playout_stretch is None else playout_stretch > UNDERRUN_TOLERANCE_MS,
    )
