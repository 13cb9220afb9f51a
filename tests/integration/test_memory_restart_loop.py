"""A value that, with the worker's own memory, passes *terminate* whenever it is held: the
worker restarts, the value is lost with it and made again for the client that still holds
its future, and the worker restarts again. The worker names the value to the center as it
restarts (feature memory-restart), so the value's task fails as KilledWorker after the
allowed deaths, saying why, instead of restarting the worker without end."""
from __future__ import annotations

import sys

import pytest

from dist_client import KilledWorker

from .test_memory_large_values import peak_rss

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the memory of a process from /proc")

MB = 10**6
RESULT_TIMEOUT = 120  # each round: a fresh worker process, the value made, half a second past
ALLOWED_DEATHS = 3


def filled(nbytes):
    return b"x" * nbytes  # (every page written: all of it resident)


def held_a_while(value, seconds):
    """Reads the value (back from disk) and keeps it, as a long task on it does."""
    import time
    time.sleep(seconds)
    return len(value)


def size_of(value):
    return len(value)


def test_a_value_past_terminate_fails_as_killed_worker_instead_of_restarting_forever(
        make_cluster):
    """Terminate at 200 MB of 400: the 180 MB value spills as it is stored (past the 120 MB
    target), and a task reading it back holds it with the process's own 30-40 MB past
    terminate, under the limit itself, for longer than such a peak may last. Before, the
    reading task failed as KilledWorker after three restarts, but the value, lost each time
    and wanted by the client, was made again, and a client reading it again restarted the
    worker again; now the value's own task fails, saying why."""
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(
        cluster.address, "--memory-limit", str(400 * MB), "--memory-target-fraction", "0.3",
        "--memory-spill-fraction", "0.35", "--memory-pause-fraction", "0.4",
        "--memory-terminate-fraction", "0.5", nanny=True, name="small")
    cluster.workers.append(worker)
    executor = cluster.executor()
    with peak_rss(worker.worker_pid()) as peak:
        value = executor.submit(filled, 180 * MB)
        read = executor.submit(held_a_while, value, 3.0)  # the client holds both futures
        with pytest.raises(KilledWorker):
            read.result(timeout=RESULT_TIMEOUT)
    assert peak[0] > 200 * MB  # (the first process past terminate, as the test means)
    with pytest.raises(KilledWorker) as raised:  # (before, it was fetched from a new run)
        value.result(timeout=RESULT_TIMEOUT)
    message = str(raised.value)
    assert "restarted for memory each time its value (180 MB) was held" in message, message
    assert "memory limit (400 MB)" in message
    # the first process and one per restart, each a death of the value's task
    assert len(worker.matching("Registered with center at")) <= ALLOWED_DEATHS + 1
    assert executor.submit(size_of, b"small").result(timeout=RESULT_TIMEOUT) == 5  # goes on
