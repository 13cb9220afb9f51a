"""The fixtures the other integration tests stand on: their servers end with their tests, a
suspended or killed worker is what it claims to be, and nothing is left running."""
from __future__ import annotations

import signal
import sys

import psutil
import pytest

from .conftest import Server

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def alive(pids) -> bool:
    try:
        return any(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    except psutil.NoSuchProcess:
        return False


def test_stop_ends_every_process_of_a_group_even_when_suspended(start_center, start_worker,
                                                                wait_until):
    center = start_center()
    worker = start_worker(center.address, nanny=True)
    group = worker.pids()
    # (the nanny, its worker, and the process that vouches for the worker to the center)
    assert worker.pid in group and worker.worker_pid() in group and len(group) == 3
    worker.suspend()
    wait_until(lambda: all(psutil.Process(pid).status() == psutil.STATUS_STOPPED
                           for pid in group), 5, "SIGSTOP to reach the nanny and its worker")
    worker.stop()
    center.stop()
    assert not worker.pids() and not center.pids()
    assert not any(alive([pid]) for pid in group)


def test_a_suspended_worker_computes_again_once_resumed(cluster, executor, wait_until):
    frozen, _ = cluster.workers
    [data] = executor.scatter([41], workers=[frozen.address])
    frozen.suspend()
    future = executor.submit(inc, data)
    assert not future.done()
    frozen.resume()
    assert future.result(timeout=RESULT_TIMEOUT) == 42


@pytest.mark.cluster(n_workers=1, nanny=True)
def test_killing_the_worker_process_under_a_nanny_restarts_it(cluster, executor, wait_until):
    [worker] = cluster.workers
    first_address, first_pid = worker.address, worker.worker_pid()
    assert cluster.worker_pids(executor) == {first_address: first_pid}

    assert worker.kill_worker_process(signal.SIGKILL) == first_pid
    worker.wait_registered(nth=2)
    assert worker.worker_pid() != first_pid
    assert worker.popen.poll() is None  # the nanny lives on
    cluster.wait_for_workers(executor, 1)
    wait_until(lambda: set(executor.ncores()) == {worker.address}, 10,
               "the center to know only the restarted worker")
    assert executor.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_kill_takes_the_whole_group_at_once(cluster, executor, wait_until):
    doomed, staying = cluster.workers
    doomed.kill()
    assert doomed.wait() == -signal.SIGKILL
    assert not doomed.pids()
    # No goodbye: the center finds out from the closed connection or the missing heartbeats.
    wait_until(lambda: set(executor.ncores()) == {staying.address}, 15,
               "the center to drop the killed worker")


@pytest.mark.cluster(n_workers=3, nthreads=2)
def test_the_cluster_marker_and_add_worker_set_the_options(cluster):
    e = cluster.executor()
    assert sorted(e.ncores().values()) == [2, 2, 2]
    assert len({w.name for w in cluster.workers}) == 3
    extra = cluster.add_worker(nthreads=3)
    cluster.wait_for_workers(e, 4)
    assert e.ncores()[extra.address] == 3


def test_the_output_after_wait_holds_all_the_process_printed():
    """A thread reads a server's output as it comes; ``wait`` returns the exit code once that
    thread has read it all, so a check of what a process printed before it exited cannot
    come too early (here: much printed just before the exit)."""
    # As many short lines as the pipe holds, written at once just before the exit: the
    # process ends without waiting for any of them to be read.
    printer = Server([sys.executable, "-c", "import sys; sys.stdout.write('.\\n' * 30000 + 'end')"])
    try:
        assert printer.wait(30) == 0
        assert printer.output().endswith(".\nend")
    finally:
        printer.stop()
