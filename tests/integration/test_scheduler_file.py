"""``--scheduler-file``: a center says where it is in a file on a shared file system, and its
workers and clients find it there, whichever starts first, and again after it restarts."""
from __future__ import annotations

import json
import os

import pytest

from dist_client import Executor
from dist_protocol.scheduler_file import SchedulerFileError

pytestmark = pytest.mark.timeout(120)


def by_file(path) -> str:
    """The worker's first argument: the file in place of the center's address."""
    return f"--scheduler-file={path}"


def inc(x):
    return x + 1


def test_worker_started_first_waits_for_the_center_and_executor_connects_by_file(
        tmp_path, start_center, start_worker, processes, wait_until):
    path = tmp_path / "sched.json"
    worker = start_worker(by_file(path), wait=False)
    worker.wait_for("dworker: waiting for the scheduler file")
    center = start_center("--scheduler-file", str(path), dashboard=True)
    worker.wait_registered()
    written = json.loads(path.read_text())
    assert written["address"] == center.address
    assert written["dashboard"] == center.wait_for("Dashboard at ")
    assert "token" not in path.read_text().lower()
    executor = Executor(scheduler_file=str(path), timeout=30)
    processes.executors.append(executor)
    assert executor.address == center.address
    assert executor.submit(inc, 1).result(timeout=30) == 2
    executor.close()
    center.interrupt()
    assert center.wait(30) == 0
    wait_until(lambda: not path.exists(), 10, "the center to remove its scheduler file")


def test_worker_follows_the_file_to_a_center_started_again_elsewhere(
        tmp_path, start_center, start_worker):
    path = tmp_path / "sched.json"
    first = start_center("--scheduler-file", str(path))
    worker = start_worker(by_file(path))
    assert worker.wait_for("Registered with center at: ") == first.address
    first.kill()  # no clean exit: the file still names the dead center
    first.wait(30)
    assert json.loads(path.read_text())["address"] == first.address
    second = start_center("--scheduler-file", str(path))
    assert second.address != first.address
    worker.wait_registered(nth=2)
    assert worker.matching("Registered with center at: ")[-1] == second.address
    with Executor(scheduler_file=str(path), timeout=30) as executor:
        assert executor.submit(inc, 2).result(timeout=30) == 3


def test_center_leaves_a_file_another_center_has_rewritten(tmp_path, start_center):
    path = tmp_path / "sched.json"
    center = start_center("--scheduler-file", str(path))
    center.wait_for("Scheduler file at ")
    path.write_text(json.dumps({"id": "center-other", "address": "127.0.0.1:1"}))
    center.interrupt()
    assert center.wait(30) == 0
    assert json.loads(path.read_text())["id"] == "center-other"


def test_worker_gives_up_waiting_after_its_timeout(tmp_path, start_worker):
    path = tmp_path / "never.json"
    worker = start_worker(by_file(path), "--timeout", "0.5", wait=False)
    assert worker.wait(30) == 3
    assert f"no scheduler file at {path} after 0.5 s" in worker.output()


def test_malformed_file_is_a_clear_error_naming_it(tmp_path, start_worker):
    path = tmp_path / "sched.json"
    path.write_text("not json")
    worker = start_worker(by_file(path), wait=False)
    assert worker.wait(30) == 2
    assert f"the scheduler file {path} is not JSON" in worker.output()
    with pytest.raises(SchedulerFileError, match=str(path)):
        Executor(scheduler_file=str(path))


def test_executor_gives_up_after_its_timeout(tmp_path):
    path = tmp_path / "never.json"
    with pytest.raises(TimeoutError, match=f"no scheduler file at {path}"):
        Executor(scheduler_file=str(path), timeout=0.3)
    assert not os.path.exists(path)


def test_address_and_file_together_are_refused(tmp_path):
    with pytest.raises(TypeError, match="not both"):
        Executor("127.0.0.1:1", scheduler_file=str(tmp_path / "x.json"))


def test_async_executor_connects_by_file(tmp_path, start_center, start_worker):
    import asyncio

    path = tmp_path / "sched.json"
    center = start_center("--scheduler-file", str(path))
    start_worker(center.address)

    async def main() -> int:
        async with Executor(scheduler_file=str(path), asynchronous=True, timeout=30) as e:
            assert e.address == center.address
            return await e.submit(inc, 41)

    assert asyncio.run(asyncio.wait_for(main(), 60)) == 42
