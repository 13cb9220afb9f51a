"""``task-stream``: the runs the center recorded, narrowed by cursor, time and count."""
from __future__ import annotations

import pytest

from dist_center import task_stream
from dist_protocol.messages import TaskErred, TaskFinished, TaskStream, Transfer

pytestmark = pytest.mark.timeout(30)

RUNS = [(f"k{i}", "w:1", 10.0 + i, 10.5 + i, 8 * i, "OK", []) for i in range(5)]


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


def test_failed_runs_are_recorded_with_status_error(center):
    center.connect()
    center.join("w:1", nthreads=3)
    center.submit("ok", "bad", "never-ran")
    center.worker_sent("w:1", TaskFinished(key="ok", nbytes=8, start=1.0, stop=2.0))
    center.worker_sent("w:1", TaskErred(key="bad", exception_type="ZeroDivisionError",
                                        message="division by zero", start=3.0, stop=3.5))
    # an error from before the function ran (it could not be loaded): no run to record
    center.worker_sent("w:1", TaskErred(key="never-ran", exception_type="ImportError",
                                        message="no module"))
    assert center.state_of("bad") == "erred" and center.state_of("never-ran") == "erred"
    assert center.task("bad").error.start is None  # the run's times are not the clients'
    records = task_stream.answer(center.state.task_stream, center.state.task_stream_count,
                                 TaskStream(id=1)).records
    assert [(r["key"], r["status"]) for r in records] == [("ok", "OK"), ("bad", "error")]
    assert records[1] == {"key": "bad", "worker": "w:1", "status": "error", "nbytes": 0,
                          "startstops": [{"action": "compute", "start": 3.0, "stop": 3.5}]}


def test_an_error_from_a_worker_not_running_the_task_is_not_a_run(center):
    center.connect()
    center.join("w:1")
    center.join("w:2")
    center.submit("bad")
    other = "w:2" if center.processing_on("bad") == "w:1" else "w:1"
    center.worker_sent(other, TaskErred(key="bad", exception_type="ZeroDivisionError",
                                        message="division by zero", start=3.0, stop=3.5))
    assert list(center.state.task_stream) == []


def test_inputs_fetched_for_a_run_come_before_its_compute(center):
    center.connect()
    center.join("w:1")
    center.submit("x")
    fetched = [Transfer("w:2", 1.0, 1.25), Transfer("w:3", 1.1, 1.5)]
    center.worker_sent("w:1", TaskFinished(key="x", nbytes=8, start=2.0, stop=3.0,
                                           transfers=fetched))
    (record,) = task_stream.answer(center.state.task_stream, center.state.task_stream_count,
                                   TaskStream(id=1)).records
    assert record["startstops"] == [
        {"action": "transfer", "start": 1.0, "stop": 1.25, "source": "w:2"},
        {"action": "transfer", "start": 1.1, "stop": 1.5, "source": "w:3"},
        {"action": "compute", "start": 2.0, "stop": 3.0}]
