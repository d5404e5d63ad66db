"""Where a session's audio goes: the `AudioOutput` protocol and the one playout queue every output plays from.

A session writes each utterance's PCM into its output and ends it; the output
reports back, to the listener given to `report_to`, what actually left it:
`PlayoutStart` when an utterance's first sample leaves, `PlayoutWords` when
the first sample of words written with the audio does, `PlayoutEnd` (with
how many samples left) when its last one does. So `audio_start`, `words`,
`done` and `played_ms` describe what the listener got, whatever carries the
audio.

Every output keeps its audio in a `PlayoutQueue`: utterances back to back,
each closed by an end marker, with optional marks in between (a label that
comes back as `PlayoutMark` once the audio queued before it has left). The
WebRTC track pulls the queue in 20 ms frames (`next_frame`: silence when
idle, underruns counted); a socket output pulls it chunk by chunk, in the
pieces it was written in (`next_chunk`). `clear` (barge-in) drops all queued
audio and reports the utterance that was cut and its played samples;
`discard` (a failed utterance) drops the queued audio of one utterance, and
what came before it still plays. Pulled in frames, a cut fades out over the
next `FADE_MS` (no click); pulled in chunks, the audio just stops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from media_server.audio.constants import FRAME_MS, RTC_RATE
from media_server.audio.fade import fade_out, fade_samples
from media_server.audio.pcm import Pcm
from media_server.session.events import Word

Cue = tuple[int, Word]
"""A word written with audio, and the sample of that audio where it starts."""


@dataclass(frozen=True)
class PlayoutStart:
    """The first sample of an utterance left the output."""

    utterance_id: str


@dataclass(frozen=True)
class PlayoutEnd:
    """The last sample of an utterance left the output; `played_samples` of it left in all."""

    utterance_id: str
    played_samples: int


@dataclass(frozen=True)
class PlayoutWords:
    """The first sample of each of `words` (of utterance `utterance_id`) left the output."""

    utterance_id: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class PlayoutMark:
    """The audio queued before the mark `label` has left the output."""

    label: str


PlayoutEvent = PlayoutStart | PlayoutWords | PlayoutEnd | PlayoutMark
PlayoutListener = Callable[[PlayoutEvent], None]


def no_listener(event: PlayoutEvent) -> None:
    """An output's listener until `report_to` names one: the events are dropped."""
    del event


class AudioOutput(Protocol):
    """Where a session's audio goes; it reports what left it to its listener."""

    @property
    def sample_rate(self) -> int: ...

    def report_to(self, listener: PlayoutListener) -> None:
        """Report playout events to `listener` from now on."""

    async def write(self, utterance_id: str, pcm: Pcm, cues: Sequence[Cue] = ()) -> None:
        """Queue audio, with words to report as their first sample leaves (`cues`, by sample of `pcm`; words
        with no audio are reported once what is queued before them has left); may wait while the output is
        full (back-pressure)."""

    def end(self, utterance_id: str) -> None:
        """No more audio will come for this utterance."""

    def clear(self) -> tuple[str | None, int]:
        """Drop everything queued; returns the utterance that was cut and its played samples."""

    def discard(self, utterance_id: str) -> None:
        """Drop what is queued of this (failed) utterance; what came before it still plays."""


@dataclass
class _Audio:
    utterance_id: str
    pcm: Pcm
    offset: int = 0
    cues: deque[Cue] = field(default_factory=deque)

    def cued(self, until: int) -> tuple[Word, ...]:
        """The words whose first sample is before `until`, taken."""
        words = []
        while self.cues and self.cues[0][0] < until:
            words.append(self.cues.popleft()[1])
        return tuple(words)


@dataclass(frozen=True)
class _Words:
    """Words written without audio: reported when reached."""

    utterance_id: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class _End:
    utterance_id: str


@dataclass(frozen=True)
class _Mark:
    label: str


class PlayoutQueue:
    """The audio waiting to leave one output, at `sample_rate`."""

    def __init__(self, sample_rate: int = RTC_RATE) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self.fade_samples = fade_samples(sample_rate)
        self._items: deque[_Audio | _Words | _End | _Mark] = deque()
        self._current: str | None = None
        self._played = 0
        self._fade: Pcm | None = None
        self.buffered_samples = 0
        self.underrun_frames = 0

    def __len__(self) -> int:
        """Queued pieces: chunks of audio, ends and marks."""
        return len(self._items)

    @property
    def idle(self) -> bool:
        """Nothing is playing or queued: the next frame is silence between utterances."""
        return self._current is None and not self._items and self._fade is None

    def push(self, utterance_id: str, pcm: Pcm, cues: Sequence[Cue] = ()) -> None:
        """Queue audio, and words to report when the sample each is cued at leaves (at once, with no audio)."""
        ordered = sorted(cues, key=lambda cue: cue[0])
        if len(pcm):
            self._items.append(_Audio(utterance_id, pcm, cues=deque(ordered)))
            self.buffered_samples += len(pcm)
        elif ordered:
            self._items.append(_Words(utterance_id, tuple(word for _, word in ordered)))

    def end(self, utterance_id: str) -> None:
        self._items.append(_End(utterance_id))

    def mark(self, label: str) -> None:
        """Report `PlayoutMark(label)` once what is queued now has left; a `clear` keeps marks."""
        self._items.append(_Mark(label))

    def clear(self) -> tuple[str | None, int]:
        """Drop all queued audio (and ends); returns the utterance that was cut and its played samples."""
        cut = (self._current, self._played)
        head = self._items[0] if self._items else None
        if isinstance(head, _Audio):
            self._fade_out(head)
        self._items = deque(item for item in self._items if isinstance(item, _Mark))
        self._current, self._played = None, 0
        self.buffered_samples = 0
        return cut

    def discard(self, utterance_id: str) -> None:
        """Drop the queued audio of `utterance_id`; if it is playing, it fades out where it is cut."""
        head = self._items[0] if self._items else None
        if isinstance(head, _Audio) and head.utterance_id == utterance_id == self._current:
            self._fade_out(head)
        kept: deque[_Audio | _Words | _End | _Mark] = deque()
        for item in self._items:
            if isinstance(item, _Audio) and item.utterance_id == utterance_id:
                self.buffered_samples -= len(item.pcm) - item.offset
            elif isinstance(item, _Words) and item.utterance_id == utterance_id:
                continue
            else:
                kept.append(item)
        self._items = kept

    def next_frame(self) -> tuple[Pcm, list[PlayoutEvent]]:
        """The next `frame_samples` of audio (silence where there is none) and what happened in them."""
        frame = np.zeros(self.frame_samples, dtype=np.int16)
        events: list[PlayoutEvent] = []
        filled = 0
        if self._fade is not None:
            frame[: len(self._fade)] = self._fade
            filled, self._fade = self.frame_samples, None
        while filled < self.frame_samples and self._items:
            item = self._items[0]
            if not isinstance(item, _Audio):
                self._items.popleft()
                events.append(self._passed(item))
                continue
            events.extend(self._entered(item))
            take = min(self.frame_samples - filled, len(item.pcm) - item.offset)
            frame[filled : filled + take] = item.pcm[item.offset : item.offset + take]
            item.offset += take
            if words := item.cued(item.offset):
                events.append(PlayoutWords(item.utterance_id, words))
            filled += take
            self._played += take
            self.buffered_samples -= take
            if item.offset == len(item.pcm):
                self._items.popleft()
        if filled < self.frame_samples and self._current is not None:
            self.underrun_frames += 1
        return frame, events

    def next_chunk(self) -> tuple[Pcm | None, list[PlayoutEvent]]:
        """The next queued piece whole: an end, a mark or words alone, or one chunk of audio as it was
        written (after its utterance's start when it is the first; before the words it carries, which the
        consumer reports once it has sent the chunk). (None, []) when nothing is queued.

        A consumer of chunks sends them whole and stops at a cut: no fade follows it.
        """
        self._fade = None
        if not self._items:
            return None, []
        item = self._items.popleft()
        if not isinstance(item, _Audio):
            return None, [self._passed(item)]
        events = self._entered(item)
        pcm = item.pcm[item.offset :]
        self._played += len(pcm)
        self.buffered_samples -= len(pcm)
        if words := item.cued(len(item.pcm)):
            events.append(PlayoutWords(item.utterance_id, words))
        return pcm, events

    def _entered(self, item: _Audio) -> list[PlayoutEvent]:
        """Playing `item` starts its utterance unless it is already playing."""
        if self._current == item.utterance_id:
            return []
        self._current, self._played = item.utterance_id, 0
        return [PlayoutStart(item.utterance_id)]

    def _passed(self, item: _Words | _End | _Mark) -> PlayoutEvent:
        if isinstance(item, _Mark):
            return PlayoutMark(item.label)
        if isinstance(item, _Words):
            return PlayoutWords(item.utterance_id, item.words)
        ended = PlayoutEnd(item.utterance_id, self._played)
        self._current, self._played = None, 0
        return ended

    def _fade_out(self, head: _Audio) -> None:
        self._fade = fade_out(head.pcm[head.offset : head.offset + self.fade_samples], self.sample_rate)
