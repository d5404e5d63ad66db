"""Where a Qwen3-TTS step's time goes: wall time per phase of `QwenBackend.step`, accumulated.

A step is cut into phases (`PHASES`) by laps of a clock. On the CPU a lap is a
`perf_counter` reading. On CUDA the work is queued, not done, when the host
moves on, so a lap records a CUDA event instead, and the events are read back
when the step ends: the step itself waits for the device (it reads each frame's
codes back to decide end-of-speech), so reading them costs no extra wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

PHASES = ("prompt", "prefill", "inputs", "predictor", "talker", "frames", "codec", "results")
"""prompt: build new segments' prompts; prefill: run prompt chunks into the cache; inputs: this
frame's per-slot inputs; predictor: sample the first code and run the code predictor (all codebooks);
talker: feed the frame to the talker (next hidden state and logits); frames: read the codes back and
book them; codec: decode due frames to PCM; results: hand the audio out."""


@dataclass
class StepTimes:
    """Totals over a run of steps: seconds per phase, steps, and frames made (one per stepped sequence)."""

    steps: int = 0
    frames: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())


class StepClock:
    """Laps within one step, added to a `StepTimes` when the step ends."""

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self.times = StepTimes()
        self._laps: list[tuple[str, float]] = []
        self._events: list[tuple[str, torch.cuda.Event]] = []
        self._start = 0.0
        self._start_event: torch.cuda.Event | None = None

    def start(self) -> None:
        if self._cuda:
            self._start_event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            self._start_event.record()
            self._events = []
        else:
            self._start = time.perf_counter()
            self._laps = []

    def lap(self, phase: str) -> None:
        """The time since the previous lap (or the start) was spent in `phase`."""
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            self._events.append((phase, event))
        else:
            self._laps.append((phase, time.perf_counter()))

    def stop(self, frames: int) -> None:
        seconds = self.times.seconds
        if self._cuda:
            previous = self._start_event
            assert previous is not None
            if self._events:
                self._events[-1][1].synchronize()
            for phase, event in self._events:
                seconds[phase] += previous.elapsed_time(event) / 1000
                previous = event
        else:
            previous_s = self._start
            for phase, at in self._laps:
                seconds[phase] += at - previous_s
                previous_s = at
        self.times.steps += 1
        self.times.frames += frames

    def take(self) -> StepTimes:
        """The totals so far; counting starts again from zero."""
        times, self.times = self.times, StepTimes()
        return times
