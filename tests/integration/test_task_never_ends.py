"""A task that never ends, cancelled by its client, does not keep its worker's thread from the
tasks that come after it (``WorkerState._replace_thread``, ``TaskRunner.replace_thread``)."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def block_for_ever(started):
    from dist_client import Event

    Event(started).set()
    time.sleep(3600)  # (the worker process is ended with the test)


async def block_for_ever_without_awaiting(started):
    from dist_client import Event

    Event(started).set()
    time.sleep(3600)  # never awaits: its event loop (on the pool thread) is stuck as well


@pytest.mark.parametrize("task", [block_for_ever, block_for_ever_without_awaiting])
def test_a_cancelled_task_that_never_ends_gives_its_thread_back(make_cluster, task):
    # The center counts a worker's slot free once a client cancels the task running there,
    # and sends the next tasks; the worker queued them behind the thread that never came
    # back: a map of 20 after the cancel waited for good on a worker of one thread.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    pid = cluster.worker_pids(e)
    stuck = cluster.submit_running(e, task, RESULT_TIMEOUT)
    stuck.cancel()
    cluster.assert_still_serves(e, pid, RESULT_TIMEOUT)
