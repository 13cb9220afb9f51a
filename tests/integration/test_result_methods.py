"""A result's own methods run on its task's thread, never on the worker's event loop: there,
a ``__sizeof__`` that blocks held the worker's heartbeats, peers, clients and stop."""
from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


class WeighedSlowly:
    def __sizeof__(self):
        time.sleep(600)  # (the worker process is ended with the test)
        return 100


def make_a_slowly_weighed_value(returning):
    from dist_client import Event

    Event(returning).set()
    return WeighedSlowly()


def test_a_result_whose_sizeof_blocks_holds_its_own_thread_only(make_cluster):
    # The worker weighed a result on its event loop as it stored it: a value's __sizeof__
    # that slept held the loop, the center removed the worker as silent after 5 s, and
    # every other task on it waited with its client.
    from dist_client import Event

    cluster = make_cluster(n_workers=1, nthreads=2)
    e = cluster.executor()
    pid = cluster.worker_pids(e)
    returning = f"returning-{os.getpid()}-{time.monotonic_ns()}"
    slow = e.submit(make_a_slowly_weighed_value, returning, pure=False)
    assert Event(returning, executor=e).wait(timeout=RESULT_TIMEOUT)
    assert e.submit(sum, [1, 2]).result(timeout=RESULT_TIMEOUT) == 3
    assert e.gather(e.map(lambda x: x + 1, range(20)), timeout=RESULT_TIMEOUT) == list(
        range(1, 21))
    assert cluster.worker_pids(e) == pid
    assert not slow.done()  # still being weighed: the task's own time
