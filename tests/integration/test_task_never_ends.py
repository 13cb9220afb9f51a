"""A task that never ends, cancelled by its client, does not keep its worker's thread from the
tasks that come after it (``WorkerState._replace_thread``, ``TaskRunner.replace_thread``)."""
from __future__ import annotations

import os
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
    from dist_client import Event

    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    pid = cluster.worker_pids(e)
    started = f"started-{os.getpid()}-{time.monotonic_ns()}"
    stuck = e.submit(task, started, pure=False)
    assert Event(started, executor=e).wait(timeout=RESULT_TIMEOUT)
    stuck.cancel()
    assert e.gather(e.map(lambda x: x + 1, range(20)), timeout=RESULT_TIMEOUT) == list(
        range(1, 21))
    assert e.submit(sum, [1, 2]).result(timeout=RESULT_TIMEOUT) == 3
    assert cluster.worker_pids(e) == pid
