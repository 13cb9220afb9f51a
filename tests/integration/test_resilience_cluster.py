"""Clients and the center go away: a killed client's work is dropped while another client goes
on; a killed center fails every pending future at once, and workers come back to a new one on
the same address. ``Executor.restart()`` clears everything and restarts the workers."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import CancelledError

import pytest
from dist_client import CenterLostError, ClusterError, Executor, LostDataError

from .conftest import Cluster

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def slow_inc(x, delay=0.05):
    time.sleep(delay)
    return x + 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- a client killed ------------------------------------------------------------------------------
DOOMED_CLIENT = textwrap.dedent("""
    import sys, time
    from dist_client import Executor

    def slow(x):
        time.sleep(3)
        return x

    e = Executor(sys.argv[1])
    futures = e.map(slow, range(100), pure=False)
    print("submitted", flush=True)
    time.sleep(600)
""")


def busy(cluster, executor) -> int:
    """Tasks the center has handed to workers and not yet seen finish."""
    return sum(row["processing"] for row in cluster.worker_table(executor).values())


def test_a_client_killed_mid_run_has_its_work_dropped_while_another_goes_on(cluster, executor,
                                                                           wait_until):
    doomed = subprocess.Popen([sys.executable, "-c", DOOMED_CLIENT, cluster.address],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert doomed.stdout.readline().strip() == "submitted"
        wait_until(lambda: busy(cluster, executor) >= 2, 10, "the doomed client's work to run")
        # This client keeps computing, before, during and after the other one's death.
        results, errors = [], []

        def keep_working():
            try:
                for i in range(30):
                    results.append(executor.submit(slow_inc, i, 0.01, pure=False)
                                   .result(timeout=RESULT_TIMEOUT))
            except Exception as exc:  # noqa: BLE001 -- reported by the main thread
                errors.append(exc)
        worker = threading.Thread(target=keep_working)
        worker.start()
        time.sleep(0.2)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        # 100 tasks of 3 s on two threads would keep the cluster busy for 150 s: only the
        # tasks under way when the client died may still finish.
        wait_until(lambda: busy(cluster, executor) == 0, 30, "the dead client's work dropped")
        worker.join(RESULT_TIMEOUT)
        assert not errors and results == list(range(1, 31))
        # Nothing of the dead client is kept: no key on any worker, nothing running there.
        wait_until(lambda: all(row["metrics"].get("keys") == 0 and row["keys"] == 0
                               and row["metrics"].get("executing") == 0
                               for row in cluster.worker_table(executor).values()),
                   10, "the workers to hold nothing")
    finally:
        if doomed.poll() is None:
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(10)


# -- the center killed ----------------------------------------------------------------------------
def test_the_center_killed_fails_pending_futures_and_a_new_one_takes_the_workers_back(
        processes, wait_until):
    port = str(free_port())
    center = processes.start_center("--port", port)
    address = center.address
    workers = [processes.start_worker(address, wait=False) for _ in range(2)]
    for worker in workers:
        worker.wait_registered()
    executor = processes.executor(address)
    done = executor.submit(inc, 1)
    assert done.result(timeout=RESULT_TIMEOUT) == 2
    pending = executor.map(slow_inc, range(20), delay=1.0, pure=False)
    center.kill()
    # Failed when the connection is lost, not when the executor gives up reconnecting (60 s).
    for future in pending:
        with pytest.raises(ClusterError, match="lost the connection to the center") as info:
            future.result(timeout=RESULT_TIMEOUT)
        assert isinstance(info.value, LostDataError)
    assert all(f.status == "error" for f in pending)
    wait_until(lambda: executor.status == "reconnecting", 5, "the executor to reconnect")

    # A new center on the same address: the workers reconnect and register again, and so
    # does the executor, which takes new work as before.
    restarted = processes.start_center("--port", port)
    assert restarted.address == address
    fresh = processes.executor(address)
    wait_until(lambda: len(fresh.ncores()) == 2, 15, "the workers to register again")
    assert all(worker.popen.poll() is None for worker in workers)
    # They registered with what they held for the old center, which the new one does not know:
    # it has them drop it, also the results of tasks that were still running.
    wait_until(lambda: all(row["metrics"].get("keys") == 0 and row["keys"] == 0
                           for row in Cluster.worker_table(fresh).values()), 10,
               "the stale keys to go")
    assert fresh.gather(fresh.map(slow_inc, range(40), delay=0.01), timeout=RESULT_TIMEOUT) \
        == list(range(1, 41))

    assert executor.submit(inc, 10).result(timeout=RESULT_TIMEOUT) == 11
    assert executor.status == "running"
    # What it held before: the new center does not know it.
    wait_until(lambda: done.status == "lost", 10, "the old future to be marked lost")
    with pytest.raises(CenterLostError, match="does not know it.*submit it again"):
        done.result(timeout=1)
    # Submitted again, as the error says, while the lost future is still held (a notebook's
    # cell run again): a new task, not the lost future back.
    assert executor.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2
    assert done.result(timeout=RESULT_TIMEOUT) == 2  # (the key's, so its future's, new life)


def close_stdout():
    sys.stdout.close()


def test_a_worker_whose_stdout_a_task_closed_comes_back_to_every_new_center(processes,
                                                                           wait_until):
    """The worker announces each registration on stdout: with stdout closed by a task, that
    line raised and ended the worker's loop that reconnects to the center, so the worker came
    back to the first new center and never to the next one."""
    port = str(free_port())
    center = processes.start_center("--port", port)
    worker = processes.start_worker(center.address)
    with Executor(center.address) as executor:
        assert executor.submit(close_stdout, pure=False).result(timeout=RESULT_TIMEOUT) is None
    for _ in range(2):
        center.kill()
        center = processes.start_center("--port", port)
        with Executor(center.address) as fresh:
            wait_until(lambda: list(fresh.ncores()) == [worker.address], 15,
                       "the worker to register again")
            assert fresh.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2
    assert "Traceback" not in worker.output(), worker.output()


def test_an_executor_gives_up_reconnecting_after_its_timeout(processes):
    center = processes.start_center()
    executor = processes.executor(center.address, reconnect_timeout=0.5)
    center.kill()
    deadline = time.monotonic() + 10
    while executor.status != "center-lost" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executor.status == "center-lost"
    with pytest.raises(ClusterError):
        executor.submit(inc, 1)


# -- Executor.restart() ---------------------------------------------------------------------------
@pytest.mark.cluster(nanny=True)
def test_restart_cancels_every_future_and_starts_new_worker_processes(cluster, executor,
                                                                     wait_until):
    other = cluster.executor()
    before = cluster.worker_pids(executor)
    held = executor.map(inc, range(10))
    assert executor.gather(held, timeout=RESULT_TIMEOUT) == list(range(1, 11))
    theirs = other.submit(slow_inc, 5, 10.0, pure=False)
    # Submits are sent asynchronously: a submit the center has not seen yet is one made after
    # the restart, so wait until the other client's task is on a worker before going on.
    wait_until(lambda: busy(cluster, executor) >= 1, 10, "the other client's task to run")
    running = executor.map(slow_inc, range(10), delay=10.0, pure=False)
    wait_until(lambda: busy(cluster, executor) >= 2, 10, "both clients' tasks to run")
    executor.restart()
    for future in [*held, *running]:
        assert future.status == "cancelled"
        with pytest.raises(CancelledError):
            future.result(timeout=1)
    wait_until(lambda: theirs.status == "cancelled", 10, "the other client's future cancelled")
    after = cluster.wait_for_workers(executor, 2)
    pids = cluster.worker_pids(executor)
    assert set(pids.values()).isdisjoint(before.values()), (before, pids)
    assert set(pids) == set(after)
    assert executor.gather(executor.map(inc, range(10)), timeout=RESULT_TIMEOUT) \
        == list(range(1, 11))
    assert other.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def clear_environment():
    os.environ.clear()
    return len(os.environ)


@pytest.mark.cluster(nanny=True)
def test_restart_starts_new_processes_after_a_task_cleared_the_environment(cluster, executor):
    """The worker asked its environment whether a nanny runs it, when told to restart: after
    a task's os.environ.clear() it restarted in its own process, and its memory with it."""
    before = cluster.worker_pids(executor)
    assert set(executor.run(clear_environment).values()) == {0}
    executor.restart()
    cluster.wait_for_workers(executor, 2, timeout=30)
    pids = cluster.worker_pids(executor)
    assert set(pids.values()).isdisjoint(before.values()), (before, pids)
    assert executor.gather(executor.map(inc, range(10)), timeout=RESULT_TIMEOUT) \
        == list(range(1, 11))


def test_restart_without_nannies_empties_the_workers(cluster, executor, wait_until):
    before = cluster.worker_pids(executor)
    held = executor.map(inc, range(10))
    executor.gather(held, timeout=RESULT_TIMEOUT)
    executor.restart()
    assert all(f.status == "cancelled" for f in held)
    cluster.wait_for_workers(executor, 2)
    assert sorted(cluster.worker_pids(executor).values()) == sorted(before.values())
    wait_until(lambda: all(row["metrics"].get("keys") == 0
                           for row in cluster.worker_table(executor).values()),
               10, "the workers to drop their data")
    assert executor.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_an_executor_without_a_center_fails_at_once():
    with pytest.raises(ClusterError, match="cannot reach the center"):
        Executor(f"127.0.0.1:{free_port()}", timeout=2)
