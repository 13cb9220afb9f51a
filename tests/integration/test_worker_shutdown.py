"""Stopping a ``dworker`` with Ctrl-C or SIGTERM unregisters it cleanly: the center drops it at
once (long before a missed heartbeat could tell), the process exits 0 without a traceback, and
the rest of the cluster goes on. A worker the center refuses exits at once and says why."""
from __future__ import annotations

import contextlib
import signal

import psutil
import pytest
from dist_worker.vouching import PROCESS_NAME as VOUCHER_NAME

pytestmark = pytest.mark.timeout(60)

# So long that only the worker's goodbye can explain a prompt removal.
HEARTBEAT_TIMEOUT = 60.0
PROMPTLY = 5.0  # seconds: the goodbye is one message; the rest is slack for a loaded machine
RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


STOPS = {
    "ctrl-c": lambda worker: worker.interrupt(),  # SIGINT to the group, as a terminal does
    "sigterm": lambda worker: worker.terminate(),  # SIGTERM to the dworker process only
}


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
@pytest.mark.parametrize("how", list(STOPS))
def test_a_stopped_worker_unregisters_at_once(make_cluster, wait_until, how, nanny):
    cluster = make_cluster(n_workers=2, nanny=nanny, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    leaving, staying = cluster.workers
    assert set(e.ncores()) == {leaving.address, staying.address}
    group = leaving.pids()
    assert len(group) == (3 if nanny else 1)  # (a nanny, its worker, its voucher)

    STOPS[how](leaving)

    wait_until(lambda: set(e.ncores()) == {staying.address}, PROMPTLY,
               f"the center to drop {leaving.address}")
    assert leaving.wait() == 0
    wait_until(lambda: not leaving.pids(), PROMPTLY, "every process of the worker to exit")
    assert "Traceback" not in leaving.output(), leaving.output()
    assert "restarting" not in leaving.output(), leaving.output()
    assert "Traceback" not in cluster.center.output(), cluster.center.output()
    assert e.gather(e.map(inc, range(10)), timeout=RESULT_TIMEOUT) == list(range(1, 11))
    assert e.run(lambda: "here") == {staying.address: "here"}


def test_work_moves_to_the_remaining_worker(cluster, executor, wait_until):
    leaving, staying = cluster.workers
    [data] = executor.scatter([b"payload"], workers=[leaving.address])
    computed = executor.submit(len, data)
    assert computed.result(timeout=RESULT_TIMEOUT) == 7

    leaving.terminate()
    wait_until(lambda: set(executor.ncores()) == {staying.address}, PROMPTLY,
               f"the center to drop {leaving.address}")
    assert leaving.wait() == 0
    later = executor.submit(inc, 41, pure=False)
    assert later.result(timeout=RESULT_TIMEOUT) == 42
    assert executor.who_has(later)[later.key] == [staying.address]


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_a_worker_the_center_refuses_exits_with_the_reason(start_center, start_worker, nanny):
    center = start_center(env={"DIST_TOKEN": "the cluster's token"})
    intruder = start_worker(center.address, nanny=nanny, wait=False,
                            env={"DIST_TOKEN": "another token"})
    assert intruder.wait(RESULT_TIMEOUT) == 2  # a configuration error: a nanny gives up too
    assert "token" in intruder.output()
    assert "Registered with center" not in intruder.output()


def test_sigint_to_the_started_process_alone_also_stops_it(cluster, executor, wait_until):
    """``kill -INT PID`` (not the terminal's group-wide Ctrl-C)."""
    leaving, staying = cluster.workers
    leaving.popen.send_signal(signal.SIGINT)
    wait_until(lambda: set(executor.ncores()) == {staying.address}, PROMPTLY,
               f"the center to drop {leaving.address}")
    assert leaving.wait() == 0


def start_a_thread_that_never_ends_and_drop_stderr():
    import sys
    import threading
    import time

    threading.Thread(target=lambda: time.sleep(3600), name="endless", daemon=False).start()
    sys.stderr = None
    return "started"


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_a_stopped_worker_exits_past_threads_its_tasks_left_running(make_cluster, wait_until,
                                                                     nanny):
    """The interpreter joins every thread that is not a daemon at exit: a worker waiting for
    a task's endless thread (with the task's stderr, replaced by None, to flush) never ends."""
    cluster = make_cluster(n_workers=1, nanny=nanny, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [leaving] = cluster.workers
    assert e.submit(start_a_thread_that_never_ends_and_drop_stderr).result(
        timeout=RESULT_TIMEOUT) == "started"

    leaving.interrupt()

    wait_until(lambda: not leaving.pids(), PROMPTLY * 2, "every process of the worker to exit")
    assert leaving.wait() == 0


def start_a_process_of_its_own_session():
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                            start_new_session=True).pid


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def ended_at_last(pid):
    """(So that a failing test leaves nothing behind either.)"""
    try:
        yield
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_processes_tasks_left_running_end_with_a_stopped_worker(make_cluster, wait_until,
                                                                  nanny):
    """Even one of its own session, which no signal to the worker's group reaches."""
    cluster = make_cluster(n_workers=1, nanny=nanny, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [leaving] = cluster.workers
    pid = e.submit(start_a_process_of_its_own_session).result(timeout=RESULT_TIMEOUT)
    with ended_at_last(pid):
        assert running(pid)

        leaving.interrupt()

        assert leaving.wait(RESULT_TIMEOUT) == 0
        wait_until(lambda: not running(pid), PROMPTLY, f"the task's process {pid} to end")
        assert "ended 1 process(es) that the worker's tasks left running" in leaving.output()


def test_processes_tasks_left_running_end_before_the_nanny_starts_a_new_worker(make_cluster,
                                                                               wait_until):
    cluster = make_cluster(n_workers=1, nanny=True, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [worker] = cluster.workers
    pid = e.submit(start_a_process_of_its_own_session).result(timeout=RESULT_TIMEOUT)
    with ended_at_last(pid):
        worker.kill_worker_process(signal.SIGKILL)

        worker.wait_registered(2)
        assert not running(pid)
        assert e.submit(inc, 1, pure=False).result(timeout=RESULT_TIMEOUT) == 2


def fork_a_child_that_gets_sigterm():
    """What ``multiprocessing.Pool.terminate()`` does to its forked workers, made certain."""
    import os
    import signal

    pid = os.fork()
    if pid == 0:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os._exit(7)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_a_signal_to_a_process_a_task_forked_is_that_process_s_alone(make_cluster, nanny):
    cluster = make_cluster(n_workers=1, nanny=nanny, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [worker] = cluster.workers
    pid = cluster.worker_pids(e)[worker.address]

    assert e.submit(fork_a_child_that_gets_sigterm).result(timeout=RESULT_TIMEOUT) \
        == -signal.SIGTERM
    assert e.submit(inc, 1, pure=False).result(timeout=RESULT_TIMEOUT) == 2
    assert cluster.worker_pids(e) == {worker.address: pid}
    assert "restarting" not in worker.output(), worker.output()


def start_a_background_process_through_a_shell(seconds):
    import subprocess

    subprocess.run(f"sleep {seconds} &", shell=True, check=True)  # the shell exits at once
    return "started"


def test_processes_a_nanny_adopts_are_reaped_as_they_end(make_cluster, wait_until):
    """The shell's background child is the nanny's once the shell exits: it must not stay a
    zombie as long as the worker runs."""
    cluster = make_cluster(n_workers=1, nanny=True, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [worker] = cluster.workers
    assert e.submit(start_a_background_process_through_a_shell, 0.2).result(
        timeout=RESULT_TIMEOUT) == "started"

    def adopted():
        return [child for child in psutil.Process(worker.pid).children()
                if child.pid != worker.worker_pid() and child.name() != VOUCHER_NAME]

    wait_until(lambda: not adopted(), PROMPTLY, "the nanny to reap the process it adopted")
    assert e.submit(inc, 1, pure=False).result(timeout=RESULT_TIMEOUT) == 2


def register_exit_handlers(marker):
    import atexit
    import pathlib
    import time

    atexit.register(time.sleep, 3600)  # (a pool's join, a flush to a server that is gone)
    atexit.register(pathlib.Path(marker).write_text, "ran")  # runs first: last in, first out
    return "registered"


def test_a_stopped_worker_exits_past_exit_handlers_its_tasks_registered(make_cluster, tmp_path):
    """A worker without a nanny exits through the interpreter, which ran every exit handler
    a task had registered and waited for it: a SIGTERM stopped the worker's serving, but the
    process never ended."""
    cluster = make_cluster(n_workers=1, nanny=False, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [leaving] = cluster.workers
    marker = tmp_path / "handler-ran"
    assert e.submit(register_exit_handlers, str(marker)).result(
        timeout=RESULT_TIMEOUT) == "registered"

    leaving.terminate()

    assert leaving.wait(RESULT_TIMEOUT) == 0
    assert marker.read_text() == "ran"  # the handlers that return still run
    assert "not waiting for exit handlers" in leaving.output()
