"""``Executor.run`` when a worker dies or leaves during the call: the call on that worker errs
(``WorkerGone``), as dask's run raises for a worker it lost, and ``on_error`` decides what the
caller sees. Each call is a task pinned to its worker (feature ``pinned-tasks``): before, it
waited for good for a worker of that address, and ``run`` never returned -- a nanny's new
worker listens elsewhere."""
from __future__ import annotations

import os
import threading

import pytest

from dist_client import RemoteError

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def mark_then_block(folder):
    import os
    import time

    open(os.path.join(folder, str(os.getpid())), "w").close()
    time.sleep(300)  # until its worker process is killed


def call_in_thread(function, *args, **kwargs) -> dict:
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- what the test looks at
            outcome["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_run_on_a_worker_whose_process_dies_during_it_errs(make_cluster, wait_until, tmp_path,
                                                            nanny):
    cluster = make_cluster(n_workers=2, nanny=nanny)
    e = cluster.executor()
    dying, staying = cluster.workers
    outcome = call_in_thread(e.run, mark_then_block, str(tmp_path), workers=[dying.address])
    pid = dying.worker_pid()
    wait_until(lambda: os.path.exists(tmp_path / str(pid)), RESULT_TIMEOUT,
               "the call to start on the worker")

    dying.kill_worker_process()

    outcome["thread"].join(RESULT_TIMEOUT)
    assert not outcome["thread"].is_alive(), "run never returned"
    error = outcome["error"]
    assert isinstance(error, RemoteError) and error.exception_type == "WorkerGone", error
    assert dying.address in str(error)
    assert e.run(os.getpid, workers=[staying.address]) == {staying.address: staying.worker_pid()}


def test_run_on_every_worker_leaves_out_the_one_that_died_with_on_error_ignore(
        make_cluster, wait_until, tmp_path):
    cluster = make_cluster(n_workers=2, nanny=True)
    e = cluster.executor()
    dying, staying = cluster.workers
    staying_pid = staying.worker_pid()

    def block_on_one(folder, dying_pid=dying.worker_pid()):
        import os
        if os.getpid() == dying_pid:
            mark_then_block(folder)
        return os.getpid()

    outcome = call_in_thread(e.run, block_on_one, str(tmp_path), on_error="ignore")
    wait_until(lambda: os.listdir(tmp_path), RESULT_TIMEOUT, "the call to start")
    dying.kill_worker_process()

    outcome["thread"].join(RESULT_TIMEOUT)
    assert not outcome["thread"].is_alive(), "run never returned"
    assert outcome["value"] == {staying.address: staying_pid}
