"""A task that sends SIGTERM to its own worker process returns before the worker stops: its
value is lost with the worker, computed again from lineage on the next worker, which stops in
turn, for as long as its future is held. The worker names the tasks that may have sent the
signal (feature task-terminated), and the center counts the deaths against them, so the task
fails as KilledWorker after the allowed deaths and the cluster goes on. So too for a SIGTERM
to the nanny from its worker process, and a worker process a task stopped (SIGSTOP), which
its nanny kills (dist_worker.nanny)."""
from __future__ import annotations

import signal

import pytest

from dist_client import KilledWorker

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 60


def terminate_own_worker(x):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGTERM)
    return x


def inc(x):
    return x + 1


def test_a_task_that_terminates_its_worker_fails_as_killed_worker(make_cluster, wait_until):
    cluster = make_cluster(n_workers=2, nthreads=1, nanny=True)
    e = cluster.executor()
    kept = e.map(inc, range(10))
    assert e.gather(kept, timeout=RESULT_TIMEOUT) == list(range(1, 11))

    # Its value may come back first (with task-finished), before the worker stops; the
    # future, held throughout, is then computed again and again, until it errs.
    killer = e.submit(terminate_own_worker, 1)
    wait_until(lambda: killer.status == "error", RESULT_TIMEOUT, "the task to err")
    with pytest.raises(KilledWorker, match="terminate_own_worker.*SIGTERM"):
        killer.result(timeout=RESULT_TIMEOUT)

    assert e.gather(kept, timeout=RESULT_TIMEOUT) == list(range(1, 11))  # not blamed
    assert e.gather(e.map(inc, range(100, 120)), timeout=RESULT_TIMEOUT) == list(range(101, 121))


def terminate_own_nanny(x):
    import os
    import signal

    os.kill(os.getppid(), signal.SIGTERM)
    return x


@pytest.mark.skipif(not hasattr(signal, "sigtimedwait"),
                    reason="the nanny learns who sent a signal with sigtimedwait")
def test_a_task_that_terminates_its_nanny_fails_as_killed_worker(make_cluster, wait_until):
    # The nanny stopped as its operator's SIGTERM stops it, worker and all, and the task ran
    # on the next worker, which stopped in turn: the cluster emptied, the task waited for a
    # worker for ever. The nanny passes a SIGTERM from its worker process on as the
    # worker's own, and starts it again.
    cluster = make_cluster(n_workers=2, nthreads=1, nanny=True)
    e = cluster.executor()
    killer = e.submit(terminate_own_nanny, 1)
    wait_until(lambda: killer.status == "error", RESULT_TIMEOUT, "the task to err")
    with pytest.raises(KilledWorker, match="terminate_own_nanny.*SIGTERM"):
        killer.result(timeout=RESULT_TIMEOUT)
    assert all(worker.popen.poll() is None for worker in cluster.workers)
    assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))


def stop_own_process(x):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGSTOP)
    return x


def test_a_task_that_stops_its_worker_process_fails_as_killed_worker(make_cluster, wait_until):
    # The nanny did not notice its child stopped: the center removed each worker for
    # silence and held the task for 60 heartbeat timeouts, its workers out of the cluster.
    # The nanny kills a child stopped for over --stopped-limit and starts another.
    cluster = make_cluster(n_workers=2, nthreads=1, nanny=True, heartbeat_timeout=5.0,
                           worker_args=("--stopped-limit", "1"))
    e = cluster.executor()
    stopper = e.submit(stop_own_process, 1)
    with pytest.raises(KilledWorker, match="stop_own_process"):
        stopper.result(timeout=RESULT_TIMEOUT)
    assert any("stopped (SIGSTOP) for over 1 s" in worker.output()
               for worker in cluster.workers)
    assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))


def terminate_own_worker_through_a_child(x):
    import subprocess

    # (the child is still there when the worker looks at who sent the signal)
    subprocess.run(["sh", "-c", "kill -TERM $PPID; exec sleep 60"], timeout=90)
    return x


@pytest.mark.skipif(not hasattr(signal, "sigwaitinfo"),
                    reason="a worker learns who sent a signal with sigwaitinfo")
@pytest.mark.parametrize("killer", [terminate_own_worker, terminate_own_worker_through_a_child])
def test_a_task_that_terminates_its_worker_without_a_nanny_fails_as_killed_worker(
        make_cluster, wait_until, killer):
    # Without a nanny the worker stopped as for an operator's SIGTERM (it unregistered, so no
    # death was counted), and the task ran on the next worker, which stopped in turn, until
    # no worker was left and the task waited for one for ever. The worker tells a SIGTERM
    # from its own process (or one it started) from an operator's, and names the task.
    cluster = make_cluster(n_workers=4, nthreads=1, nanny=False)
    e = cluster.executor()
    future = e.submit(killer, 1)
    wait_until(lambda: future.status == "error", RESULT_TIMEOUT, "the task to err")
    # (the message names the SIGTERM when the task had ended before its worker stopped)
    with pytest.raises(KilledWorker, match=killer.__name__):
        future.result(timeout=RESULT_TIMEOUT)
    # (three deaths, and the last worker left)
    wait_until(lambda: [worker.popen.poll() for worker in cluster.workers].count(None) == 1,
               RESULT_TIMEOUT, "the three workers the task terminated to exit")
    assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))


def terminate_a_child(seconds):
    import subprocess

    child = subprocess.Popen(["sleep", str(seconds)])
    child.terminate()
    return child.wait(timeout=seconds / 2)


def test_an_operator_s_sigterm_still_stops_a_worker_without_a_nanny_and_blames_nothing(
        make_cluster):
    cluster = make_cluster(n_workers=1, nthreads=1, nanny=False)
    e = cluster.executor()
    # (the worker's own blocking of SIGTERM is not passed on to the processes tasks start)
    assert e.submit(terminate_a_child, 60).result(timeout=RESULT_TIMEOUT) == -signal.SIGTERM
    [worker] = cluster.workers
    worker.terminate()
    assert worker.wait() == 0
    assert "stopping as if killed" not in worker.output()
