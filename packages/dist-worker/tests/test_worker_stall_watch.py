"""``StallWatch``: heartbeats from its own thread while one inline run keeps the loop's thread,
none while inline runs follow one another or none runs."""
from __future__ import annotations

import threading

import pytest
from dist_worker.stallwatch import Looks, StallWatch

INTERVAL = 0.01


def test_looks_count_the_intervals_one_run_went_on_through():
    looks = Looks()
    assert looks.look("a", 1) == 0  # first seen: it may have just begun
    assert looks.look("a", 1) == 1
    assert looks.look("a", 1) == 2


def test_looks_at_runs_that_follow_one_another_count_nothing():
    looks = Looks()
    assert [looks.look(f"t-{runs}", runs) for runs in range(1, 20)] == [0] * 19


def test_a_new_run_or_none_starts_the_count_again():
    looks = Looks()
    looks.look("a", 1)
    assert looks.look("a", 1) == 1
    assert looks.look("b", 2) == 0
    assert looks.look("b", 2) == 1
    assert looks.look(None, 2) == 0
    assert looks.look("b", 2) == 0  # (the same count, but a row began since: a new run)
    assert looks.look("b", 2) == 1


class Beats:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.third = threading.Event()

    def __call__(self, key: str, looks: int) -> None:
        self.calls.append((key, looks))
        if looks == 3:
            self.third.set()


@pytest.mark.timeout(30)
def test_a_run_that_keeps_the_loop_gets_a_beat_each_interval_until_it_ends():
    beats = Beats()
    watch = StallWatch(INTERVAL, beats)
    try:
        watch.running, watch.runs = "stuck", 1
        watch.arm()
        assert beats.third.wait(10)
        assert beats.calls[:3] == [("stuck", 1), ("stuck", 2), ("stuck", 3)]
    finally:
        watch.close()


@pytest.mark.timeout(30)
def test_a_watch_idle_since_its_last_row_is_armed_again_by_the_next():
    beats = Beats()
    watch = StallWatch(INTERVAL, beats)
    try:
        watch.running, watch.runs = "first", 1
        watch.arm()
        assert beats.third.wait(10)
        watch.running = None  # the row ended
        beats.third.clear()
        watch.running, watch.runs = "second", 2
        watch.arm()
        assert beats.third.wait(10)
        assert ("second", 3) in beats.calls
    finally:
        watch.close()


@pytest.mark.timeout(30)
def test_a_beat_that_raises_does_not_end_the_watch():
    third = threading.Event()

    def beat(key: str, looks: int) -> None:
        if looks == 3:
            third.set()
        raise OSError("the connection broke")

    watch = StallWatch(INTERVAL, beat)
    try:
        watch.running, watch.runs = "stuck", 1
        watch.arm()
        assert third.wait(10)
    finally:
        watch.close()
