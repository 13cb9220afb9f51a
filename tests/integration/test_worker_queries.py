"""What the workers run now, asked from a client between real processes: ``Future.running()``
(concurrent.futures' contract: True while the call executes), dask's ``call_stack`` and
``profile``, and the recent log lines of the workers and the center."""
from __future__ import annotations

import logging

import pytest
from dist_client import Event

pytestmark = pytest.mark.timeout(120)


def wait_for_go(started, go):
    Event(started).set()
    Event(go).wait(60)
    return "went"


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_running_is_true_while_the_call_executes_and_false_before_and_after(cluster):
    e = cluster.executor()
    blocked = e.submit(wait_for_go, "started", "go", pure=False)
    behind = e.submit(lambda: 1, pure=False)  # the worker's one thread is taken
    assert Event("started", e).wait(60)
    assert blocked.running() is True
    assert behind.running() is False and not behind.done()

    [(worker, stacks)] = e.call_stack([blocked]).items()
    assert worker == cluster.workers[0].address
    [lines] = stacks.values()
    assert list(stacks) == [blocked.key]
    # outermost first: the task's function (sent by value: no source line), down to the wait
    assert "in wait_for_go" in "".join(lines) and "acquire" in lines[-1]
    assert e.call_stack(keys=[behind.key]) == {}
    assert list(e.call_stack()) == [worker]
    tree = e.profile()
    assert tree["count"] == 1 and any("wait_for_go" in child["description"]["name"]
                                      for child in _nodes(tree))

    Event("go", e).set()
    assert blocked.result(60) == "went" and behind.result(60) == 1
    assert blocked.running() is False and behind.running() is False
    assert e.call_stack() == {}


def _nodes(tree):
    for child in tree["children"].values():
        yield child
        yield from _nodes(child)


def log_warning(text):
    logging.getLogger("a.user.module").warning(text)


@pytest.mark.cluster(center_args=("--log-level", "info"))
def test_the_workers_and_the_center_give_their_newest_log_lines(cluster):
    e = cluster.executor()
    e.run(log_warning, "from every worker")
    logs = e.get_worker_logs()
    assert set(logs) == {w.address for w in cluster.workers}
    for lines in logs.values():
        assert lines[-1][0] == "WARNING" and "from every worker" in lines[-1][1]
    [address] = list(logs)[:1]
    assert list(e.get_worker_logs(n=1, workers=[address])) == [address]
    assert len(e.get_worker_logs(n=1, workers=[address])[address]) == 1
    center = e.get_scheduler_logs()
    assert any("registered" in line for _, line in center)
    assert all(isinstance(level, str) for level, _ in center)
    assert len(e.get_scheduler_logs(n=2)) == 2
