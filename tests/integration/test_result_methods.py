"""A result's own methods run on its task's thread, never on the worker's event loop: there,
a ``__sizeof__`` that blocks held the worker's heartbeats, peers, clients and stop."""
from __future__ import annotations

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
    cluster = make_cluster(n_workers=1, nthreads=2)
    e = cluster.executor()
    pid = cluster.worker_pids(e)
    slow = cluster.submit_running(e, make_a_slowly_weighed_value, RESULT_TIMEOUT)
    cluster.assert_still_serves(e, pid, RESULT_TIMEOUT)
    assert not slow.done()  # still being weighed: the task's own time
