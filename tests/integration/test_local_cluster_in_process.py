"""``Executor(processes=False)`` / ``LocalCluster(processes=False)``: the real center and
workers in this process, on a thread of their own, gone again after ``close()`` -- no thread,
socket or process left behind."""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading

import psutil
import pytest
from dist_client import AsyncExecutor, Executor, get_worker
from dist_client.local import LocalCluster
from dist_protocol import task_context

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30
# What a task leaves in this process, to see that a restart keeps the interpreter.
LEFT_BY_TASK = "DIST_TEST_LEFT_BY_TASK"


def inc(x):
    return x + 1


def remember(word):
    os.environ[LEFT_BY_TASK] = word  # (functions travel pickled by value: not a global)
    return word


def in_a_task():
    return task_context.current() is not None


def where():
    worker = get_worker()
    return os.getpid(), worker.name, worker.local_directory


class Leftovers:
    """What this process has besides the threads, sockets and children it had before."""

    def __init__(self):
        self.me = psutil.Process()
        self.threads = set(threading.enumerate())
        self.sockets = self._sockets()
        self.children = {p.pid for p in self.me.children(recursive=True)}

    def _sockets(self) -> set:
        return {(c.laddr, c.raddr) for c in self.me.net_connections(kind="inet")}

    def now(self) -> tuple[set, set, set]:
        return ({t.name for t in set(threading.enumerate()) - self.threads},
                self._sockets() - self.sockets,
                {p.pid for p in self.me.children(recursive=True)} - self.children)

    def none(self) -> bool:
        return self.now() == (set(), set(), set())


def test_the_servers_run_in_this_process_and_leave_nothing_behind(wait_until, capsys):
    before = Leftovers()
    e = Executor(processes=False)
    try:
        # dask's default in-process: one worker, a thread per core.
        assert list(e.nthreads().values()) == [os.cpu_count()]
        assert e.cluster.processes == [] and before.now()[2] == set()
        [(pid, name, _)] = e.run(where).values()
        assert pid == os.getpid() and name == "local-0"
        assert e.submit(inc, e.submit(inc, 1)).result(timeout=RESULT_TIMEOUT) == 3
        assert e.submit(sum, e.scatter([1, 2, 3])).result(timeout=RESULT_TIMEOUT) == 6
        assert e.gather(e.map(inc, range(10)), timeout=RESULT_TIMEOUT) == list(range(1, 11))
        assert e.dashboard_link and e.dashboard_link.startswith("http")
    finally:
        e.close()
    assert e.status == "closed" and e.cluster.status == "closed"
    wait_until(before.none, 15, "the in-process cluster's threads and sockets to go")
    # dworker's lines for the operator are not printed into the user's program.
    assert "Registered with center" not in capsys.readouterr().out


def submits_from_the_task(x):
    from dist_client import worker_executor
    with worker_executor() as e:
        return e.submit(inc, x).result(timeout=RESULT_TIMEOUT)


def test_the_executor_tasks_opened_goes_with_the_cluster(wait_until, capsys):
    """A task that used the cluster opened an executor in this process; the cluster closing
    closes it too, instead of leaving it to reconnect to a center that is gone."""
    before = Leftovers()
    e = Executor(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None)
    try:
        assert e.submit(submits_from_the_task, 1).result(timeout=RESULT_TIMEOUT) == 2
    finally:
        e.close()
    wait_until(before.none, 15, "the in-process cluster's threads and sockets to go")
    assert "lost the center" not in capsys.readouterr().err


FORK_AFTER_IN_PROCESS_CLUSTER = """
import os, sys, time
from dist_client import Executor

e = Executor(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None)
assert e.submit(abs, -1).result(timeout=30) == 1
pid = os.fork()
if pid == 0:
    sys.exit(0)  # the exit hooks run here: the cluster and executor are the parent's
deadline = time.monotonic() + 20
while not os.waitpid(pid, os.WNOHANG)[0]:
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        print("the child did not exit")
        break
    time.sleep(0.05)
print("parent", e.submit(abs, -2).result(timeout=30))
e.close()
"""


def test_a_forked_child_leaves_the_parents_cluster_alone():
    done = subprocess.run([sys.executable, "-c", FORK_AFTER_IN_PROCESS_CLUSTER],
                          capture_output=True, text=True, timeout=80)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["parent 2"], done.stdout + done.stderr
    # The child did not try to stop the servers (on a loop whose thread it does not have).
    assert "could not stop" not in done.stderr.lower(), done.stderr


def test_the_users_code_holding_the_gil_costs_the_cluster_no_worker(caplog):
    """The center and workers share this process: a stall of the user's own code (a C call
    holding the GIL past the heartbeat timeout) stalls them all, and is no worker's silence."""
    import ctypes
    with Executor(processes=False, n_workers=2, threads_per_worker=1,
                  dashboard_address=None) as e:
        held = e.submit(inc, 1)
        assert held.result(timeout=RESULT_TIMEOUT) == 2
        with caplog.at_level(logging.WARNING, logger="dist"):
            ctypes.PyDLL(None).sleep(6)  # (PyDLL: the GIL stays held through the call)
            # The center's overdue timers, its check for silent workers among them, run
            # before it reads this submit.
            assert e.submit(inc, held).result(timeout=RESULT_TIMEOUT) == 3
        assert not [r.getMessage() for r in caplog.records if "silent" in r.getMessage()
                    or "lost the center" in r.getMessage()]


def test_several_workers_in_this_process_pass_values_between_them(wait_until):
    before = Leftovers()
    with Executor(n_workers=2, threads_per_worker=1, processes=False) as e:
        assert sorted(e.nthreads().values()) == [1, 1]
        first, second = sorted(e.nthreads())
        x = e.submit(inc, 1, workers=[first])
        y = e.submit(inc, x, workers=[second])
        assert y.result(timeout=RESULT_TIMEOUT) == 3
        held = e.who_has([x, y])
        assert first in held[x.key] and held[y.key] == [second]
    wait_until(before.none, 15, "the in-process cluster's threads and sockets to go")


def test_local_cluster_in_process_without_a_dashboard(wait_until):
    before = Leftovers()
    cluster = LocalCluster(processes=False, dashboard_address=None, n_workers=1,
                           threads_per_worker=2)
    try:
        assert cluster.dashboard_link == ""
        with Executor(cluster) as e:
            assert e.dashboard_link is None
            assert e.submit(inc, 41).result(timeout=RESULT_TIMEOUT) == 42
        cluster.scale(2)
        with Executor(cluster) as e:
            e.wait_for_workers(2, timeout=RESULT_TIMEOUT)
            assert sorted(e.nthreads().values()) == [2, 2]
    finally:
        cluster.close()
    wait_until(before.none, 15, "the in-process cluster's threads and sockets to go")


def test_restart_in_process_forgets_the_work_and_keeps_the_interpreter(monkeypatch):
    """No nanny to start a fresh process: each worker forgets every task and value and
    registers again; what tasks left in the process's modules stays."""
    monkeypatch.delenv(LEFT_BY_TASK, raising=False)
    with Executor(n_workers=2, threads_per_worker=1, processes=False) as e:
        kept = e.submit(remember, "before restart")
        assert kept.result(timeout=RESULT_TIMEOUT) == "before restart"
        e.restart(timeout=RESULT_TIMEOUT)
        assert kept.cancelled()
        assert len(e.nthreads()) == 2
        assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2
        assert os.environ[LEFT_BY_TASK] == "before restart"
    monkeypatch.delenv(LEFT_BY_TASK)


def test_a_task_calling_sys_exit_fails_and_the_cluster_goes_on():
    with Executor(n_workers=1, threads_per_worker=1, processes=False) as e:
        with pytest.raises(SystemExit):
            e.submit(sys.exit, 3).result(timeout=RESULT_TIMEOUT)
        assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_memory_limit_in_process_spills_values_into_the_local_directory(tmp_path, wait_until):
    """The process's memory is shared, so only the values' own sizes count: past the target
    (60 % of the limit) a worker's values go to its folder under ``local_directory``."""
    with Executor(n_workers=1, threads_per_worker=1, processes=False, memory_limit="200MB",
                  local_directory=tmp_path) as e:
        [(_, _, folder)] = e.run(where).values()
        assert folder.startswith(str(tmp_path))
        [worker] = e.scheduler_info()["workers"].values()
        assert worker["memory_limit"] == 200_000_000
        big = [e.submit(bytes, 50_000_000, pure=False) for _ in range(3)]
        e.gather(big, timeout=RESULT_TIMEOUT)
        wait_until(lambda: any(os.scandir(folder)), 15, "a value spilled to the folder")
        assert e.submit(len, big[0]).result(timeout=RESULT_TIMEOUT) == 50_000_000
        del big
    assert not os.path.exists(folder)  # each worker's folder goes with it


def test_local_directory_of_worker_processes(tmp_path):
    with Executor(n_workers=1, threads_per_worker=1, local_directory=tmp_path) as e:
        [(pid, _, folder)] = e.run(where).values()
        assert pid != os.getpid() and folder.startswith(str(tmp_path))


@pytest.mark.parametrize("processes", [True, False])
def test_dashboard_address_chooses_the_port(processes):
    import json
    import urllib.request

    with Executor(n_workers=1, threads_per_worker=1, processes=processes,
                  dashboard_address="127.0.0.1:0") as e:
        assert e.dashboard_link and not e.dashboard_link.rstrip("/").endswith(":8788")
        with urllib.request.urlopen(e.dashboard_link.rstrip("/") + "/api/workers",
                                    timeout=RESULT_TIMEOUT) as response:
            assert len(json.load(response)["workers"]) == 1
    with Executor(n_workers=0, processes=processes, dashboard_address=False) as e:
        assert e.dashboard_link is None


def test_silence_logs_sets_the_level_of_the_servers_in_process(caplog):
    def warn(text):
        logging.getLogger("dist.worker").warning(text)

    with caplog.at_level(logging.DEBUG, logger="dist"):
        with Executor(n_workers=1, processes=False, silence_logs=logging.ERROR) as e:
            e.run(warn, "silenced warning")
        assert "silenced warning" not in caplog.text
        # The level is given back at close, and without silence_logs nothing is changed.
        assert logging.getLogger("dist.worker").level == logging.NOTSET
        with Executor(n_workers=1, processes=False) as e:
            e.run(warn, "heard warning")
        assert "heard warning" in caplog.text


def test_silence_logs_is_the_log_level_of_worker_processes(capfd):
    def say(text):
        logging.getLogger("dist.worker").info(text)

    with Executor(n_workers=1, threads_per_worker=1, silence_logs=logging.INFO) as e:
        e.run(say, "info from the worker process")
    with Executor(n_workers=1, threads_per_worker=1) as e:
        e.run(say, "info nobody sees")
    err = capfd.readouterr().err
    assert "info from the worker process" in err and "info nobody sees" not in err


def test_set_as_default_false_leaves_dask_and_the_default_executor_alone():
    import dask
    import dask.config
    from dist_client.current import default_executor

    with Executor(n_workers=1, processes=False, set_as_default=False) as e:
        assert dask.config.get("scheduler", None) is None
        with pytest.raises(ValueError, match="no running Executor"):
            default_executor()
        # dask runs in its own threads, not on the cluster, unless told to.
        assert dask.delayed(in_a_task)().compute() is False
        assert dask.delayed(in_a_task)().compute(scheduler=e) is True
    with Executor(n_workers=1, processes=False) as e:
        assert default_executor() is e
        assert dask.config.get("scheduler", None) is not None


def test_async_executor_in_process(wait_until):
    before = Leftovers()

    async def main():
        async with AsyncExecutor(n_workers=1, threads_per_worker=1, processes=False) as e:
            return await e.submit(inc, 1)

    assert asyncio.run(main()) == 2
    wait_until(before.none, 15, "the in-process cluster's threads and sockets to go")
