"""Absolute-deadline pacing: no drift over an hour, stalls caught up, huge stalls resynced."""

from __future__ import annotations

import random

import pytest

from media_server.rtc.pacer import Pacer

PERIOD = 0.020


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_hour_of_frames_does_not_drift() -> None:
    clock = ManualClock()
    pacer = Pacer(PERIOD, clock=clock)
    rng = random.Random(7)
    frames = 3600 * 50
    start = clock.now
    for _ in range(frames):
        # A sleeper that always wakes a little late, as asyncio.sleep does.
        clock.now += pacer.next_delay() + rng.uniform(0, 0.004)
    # Frame n leaves at start + n * period plus at most one wake-up's lateness.
    lateness = (clock.now - start) - (frames - 1) * PERIOD
    assert 0 <= lateness < 0.005
    assert pacer.resyncs == 0


def test_a_stall_is_caught_up_without_gaps() -> None:
    clock = ManualClock()
    pacer = Pacer(PERIOD, clock=clock)
    for _ in range(10):
        clock.now += pacer.next_delay()
    clock.now += 0.1  # the event loop stalls for 100 ms
    delays = [pacer.next_delay() for _ in range(5)]
    assert delays == [0.0] * 5
    assert pacer.next_delay() > 0
    assert pacer.resyncs == 0


def test_a_stall_beyond_the_lag_limit_restarts_the_schedule() -> None:
    clock = ManualClock()
    pacer = Pacer(PERIOD, max_lag_s=0.5, clock=clock)
    pacer.next_delay()
    clock.now += 3.0
    assert pacer.next_delay() == 0.0
    assert pacer.resyncs == 1
    assert pacer.next_delay() == pytest.approx(PERIOD)


def test_an_early_frame_moves_the_schedule_and_idle_frames_give_the_time_back() -> None:
    clock = ManualClock()
    pacer = Pacer(PERIOD, clock=clock)
    start = clock.now
    for _ in range(10):
        clock.now += pacer.next_delay(idle=True)
    assert pacer.next_delay(idle=True) == pytest.approx(PERIOD)
    clock.now += 0.004  # speech arrives 4 ms into the wait: that frame leaves at once
    pacer.send_early()
    assert pacer.next_delay() == pytest.approx(PERIOD)  # the next frame is paced from the early one
    clock.now += PERIOD
    for _ in range(200):  # silence afterwards pays the 16 ms back, at most 1 ms per frame
        clock.now += pacer.next_delay(idle=True)
    assert clock.now - start == pytest.approx(211 * PERIOD)  # frame 211 leaves exactly on the old schedule


def test_sending_early_after_speech_has_started_changes_nothing() -> None:
    clock = ManualClock()
    pacer = Pacer(PERIOD, clock=clock)
    for _ in range(3):
        clock.now += pacer.next_delay()
    clock.now += 0.030  # late, not early
    pacer.send_early()
    assert pacer.next_delay() == 0.0
