"""``task-stream``: the runs the center recorded, narrowed by cursor, time and count."""
from __future__ import annotations

import pytest

from dist_center import task_stream
from dist_protocol.messages import TaskStream

pytestmark = pytest.mark.timeout(30)

RUNS = [(f"k{i}", "w:1", 10.0 + i, 10.5 + i, 8 * i) for i in range(5)]


def keys(reply) -> list[str]:
    return [r["key"] for r in reply.records]


def test_records_are_as_dask_gives_them():
    reply = task_stream.answer(RUNS, 5, TaskStream(id=3))
    assert reply.id == 3 and reply.cursor == 5
    assert reply.records[1] == {"key": "k1", "worker": "w:1", "status": "OK", "nbytes": 8,
                                "startstops": [{"action": "compute", "start": 11.0,
                                                "stop": 11.5}]}
    assert keys(reply) == ["k0", "k1", "k2", "k3", "k4"]


def test_since_a_cursor_counts_runs_that_left_the_log():
    # 12 recorded ever, the newest 5 kept: cursor 9 asks for the last 3
    assert keys(task_stream.answer(RUNS, 12, TaskStream(id=1, after=9))) == ["k2", "k3", "k4"]
    assert keys(task_stream.answer(RUNS, 12, TaskStream(id=1, after=12))) == []
    assert keys(task_stream.answer(RUNS, 12, TaskStream(id=1, after=0))) == keys(
        task_stream.answer(RUNS, 12, TaskStream(id=1)))
    # a cursor from before a restart of the center: everything it has
    assert len(task_stream.answer(RUNS, 5, TaskStream(id=1, after=40)).records) == 5


def test_time_range_and_count():
    assert keys(task_stream.answer(RUNS, 5, TaskStream(id=1, start=11.0, stop=13.5))) == [
        "k1", "k2", "k3"]
    assert keys(task_stream.answer(RUNS, 5, TaskStream(id=1, count=2))) == ["k3", "k4"]
    assert keys(task_stream.answer(RUNS, 5, TaskStream(id=1, count=0))) == []
    assert keys(task_stream.answer(RUNS, 5, TaskStream(id=1, count=99))) == keys(
        task_stream.answer(RUNS, 5, TaskStream(id=1)))
