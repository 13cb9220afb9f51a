"""A worker whose nanny is killed (``kill -9`` of the ``dworker`` process id) stops as if
killed, saying that its nanny ended, where it said it got a SIGTERM "not from the nanny" and
guessed at a task's ``os.kill``; the task it was running runs again on another worker."""
from __future__ import annotations

import os
import signal

import pytest

pytestmark = pytest.mark.timeout(90)


def running_until_released(path: str) -> str:
    import time
    with open(path + ".started", "w"):
        pass
    while not os.path.exists(path):
        time.sleep(0.01)
    return "done"


def test_a_killed_nanny_stops_its_worker_saying_why(processes, wait_until, tmp_path):
    center = processes.start_center()
    address = center.address
    doomed = processes.start_worker(address, nanny=True, name="doomed")
    doomed.wait_registered()
    worker_pid = doomed.worker_pid()
    executor = processes.executor(address)
    release = str(tmp_path / "release")
    future = executor.submit(running_until_released, release)
    wait_until(lambda: os.path.exists(release + ".started"), 30, "the task's start")
    os.kill(doomed.pid, signal.SIGKILL)
    wait_until(lambda: "ended without stopping this worker" in doomed.output(), 30,
               "the worker's word that its nanny ended")
    assert "not from the nanny" not in doomed.output()
    wait_until(lambda: not _alive(worker_pid), 30, "the worker's exit")
    survivor = processes.start_worker(address, name="survivor")
    survivor.wait_registered()
    open(release, "w").close()
    assert future.result(30) == "done"


def _alive(pid: int) -> bool:
    import psutil
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
