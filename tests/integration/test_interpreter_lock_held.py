"""A task that holds the interpreter lock for longer than the heartbeat timeout silences its
whole worker process: no thread of it runs, the event loop's heartbeats no more than any.
Under a nanny, which is another process, the worker is vouched for (``worker-alive``, see
dist_worker.vouching) and the center keeps it: the task runs once, and the worker never
leaves. A worker whose nanny is stopped with it is removed after the timeout as before."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 60


def hold_the_interpreter_lock(seconds, runs):
    import os
    import time

    with open(runs, "a") as log:
        log.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + seconds
    # Only C calls until the deadline: no bytecode runs, so the lock is never let go.
    any(map(deadline.__lt__, iter(time.monotonic, None)))
    return seconds


def inc(x):
    return x + 1


def test_a_worker_whose_task_holds_the_interpreter_lock_is_kept(make_cluster, tmp_path):
    cluster = make_cluster(n_workers=2, nthreads=1, nanny=True, heartbeat_timeout=2.0)
    e = cluster.executor()
    assert e.gather(e.map(inc, range(4)), timeout=RESULT_TIMEOUT) == [1, 2, 3, 4]
    runs = tmp_path / "runs"
    held = e.submit(hold_the_interpreter_lock, 7.0, str(runs))
    assert held.result(timeout=RESULT_TIMEOUT) == 7.0
    center = cluster.center.output()
    assert "its nanny says its process runs" in center, center
    assert "removing it" not in center, center
    assert len(runs.read_text().split()) == 1  # ran once: not again elsewhere meanwhile
    assert all(w.output().count("Registered with center at: ") == 1 for w in cluster.workers)
    assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))


def test_a_worker_stopped_with_its_nanny_is_removed_after_the_timeout(make_cluster,
                                                                      wait_until):
    cluster = make_cluster(n_workers=2, nthreads=1, nanny=True, heartbeat_timeout=2.0)
    e = cluster.executor()
    frozen, survivor = cluster.workers
    assert e.gather(e.map(inc, range(4)), timeout=RESULT_TIMEOUT) == [1, 2, 3, 4]
    frozen_address = frozen.address
    frozen.suspend()
    try:
        wait_until(lambda: set(e.ncores()) == {survivor.address}, 30,
                   "the center to drop the stopped worker")
        silent = re.findall(r"worker (\S+) silent for [\d.]+ s: removing it",
                            cluster.center.output())
        assert frozen_address in silent
        assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))
    finally:
        frozen.resume()
