"""A center with a state directory survives its own crash: killed with SIGKILL in the middle of
a map and started again on the same directory, it takes its tasks back from the journal, the
workers register again with what they hold (which is not computed again), the client resumes
its session, and a ``gather`` waiting through it all returns the right values. A state
directory that cannot be read stops the center, with a clear message, until it is reset."""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from dist_client import CenterLostError

pytestmark = pytest.mark.timeout(240)

N = 1000  # tasks of each of the two maps: 2,000 in all


def first(i, folder):
    time.sleep(0.005)
    Path(folder, f"first-{i}-{uuid.uuid4().hex}").touch()  # one file per execution
    return 2 * i


def second(a, i, folder):
    time.sleep(0.005)
    Path(folder, f"second-{i}-{uuid.uuid4().hex}").touch()
    return a + i


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def executions(folder: Path) -> Counter:
    """How many times each task ran: ``{("first", i): n, ("second", i): n}``."""
    counts: Counter = Counter()
    for path in folder.iterdir():
        kind, i, _ = path.name.split("-")
        counts[(kind, int(i))] += 1
    return counts


class DurableCluster:
    def __init__(self, processes, tmp_path: Path):
        self.processes = processes
        self.port = str(free_port())
        self.state_dir = str(tmp_path / "state")
        self.center = self.start()
        self.workers = [processes.start_worker(self.center.address, nthreads=2, wait=False)
                        for _ in range(2)]
        for worker in self.workers:
            worker.wait_registered()

    def start(self):
        return self.processes.start_center("--port", self.port, "--state-dir", self.state_dir,
                                           "--log-level", "info")

    def kill_and_restart(self):
        self.center.kill()
        self.center.wait(30)
        self.center = self.start()
        return self.center


def start_maps(executor, folder: Path):
    firsts = executor.map(first, range(N), folder=str(folder))
    seconds = executor.map(second, firsts, range(N), folder=str(folder))
    return firsts, seconds


def test_a_center_killed_midway_takes_up_where_it_was(processes, tmp_path, wait_until):
    folder = tmp_path / "runs"
    folder.mkdir()
    cluster = DurableCluster(processes, tmp_path)
    executor = processes.executor(cluster.center.address)
    firsts, seconds = start_maps(executor, folder)
    gathered: list = []
    in_flight = threading.Thread(target=lambda: gathered.append(
        executor.gather(seconds, timeout=180)))
    in_flight.start()  # waiting through the crash
    wait_until(lambda: sum(1 for _ in folder.iterdir()) >= N // 2, 120, "a quarter of the runs")

    cluster.center.kill()
    cluster.center.wait(30)
    ran_before = executions(folder)  # (the workers go on with what they were running)
    cluster.center = cluster.start()

    in_flight.join(200)
    assert gathered == [[3 * i for i in range(N)]]
    assert executor.gather(firsts, timeout=60) == [2 * i for i in range(N)]
    wait_until(lambda: executor.status == "running", 30, "the session to be resumed")
    ran = executions(folder)
    assert set(ran) == {(kind, i) for kind in ("first", "second") for i in range(N)}
    # What had run before the crash was held on the workers (the client holds every future):
    # found again when they registered, it did not run again.
    again = {task: ran[task] for task in ran_before if ran[task] != 1}
    assert not again, f"ran more than once although held on a live worker: {again}"
    assert "2000 tasks, 1 clients; waiting for 2 workers" in cluster.center.output()


def test_a_center_killed_twice_once_while_recovering(processes, tmp_path, wait_until):
    folder = tmp_path / "runs"
    folder.mkdir()
    cluster = DurableCluster(processes, tmp_path)
    executor = processes.executor(cluster.center.address)
    firsts, seconds = start_maps(executor, folder)
    wait_until(lambda: sum(1 for _ in folder.iterdir()) >= N // 3, 120, "a sixth of the runs")

    center = cluster.kill_and_restart()
    center.wait_for("Start center at")  # replayed: now killed during its own recovery
    cluster.kill_and_restart()

    assert executor.gather(seconds, timeout=180) == [3 * i for i in range(N)]
    assert executor.gather(firsts, timeout=60) == [2 * i for i in range(N)]
    assert set(executions(folder)) == {(kind, i) for kind in ("first", "second")
                                       for i in range(N)}
    # New work goes on after all that.
    assert executor.submit(first, N, str(folder)).result(timeout=60) == 2 * N


def test_work_kept_pending_fails_when_the_center_comes_back_without_its_state(processes,
                                                                              tmp_path):
    """Restarted without its state directory, the center does not know the client: the
    futures kept pending through the outage fail then, as they would have at once."""
    port = str(free_port())
    state_dir = str(tmp_path / "state")
    center = processes.start_center("--port", port, "--state-dir", state_dir)
    worker = processes.start_worker(center.address)
    executor = processes.executor(center.address)
    blocked = executor.submit(time.sleep, 60, pure=False)
    center.kill()
    center.wait(30)
    processes.start_center("--port", port)  # no state directory
    with pytest.raises(CenterLostError, match="does not know this client"):
        blocked.result(timeout=60)
    assert executor.submit(first, 1, str(tmp_path)).result(timeout=60) == 2
    assert worker.popen.poll() is None


def test_a_client_without_sessions_fails_its_pending_work_at_once(processes, tmp_path,
                                                                  monkeypatch):
    """An older client (no feature ``sessions``) of a durable center: as before, pending
    futures fail as soon as the connection is lost, and the center it reconnects to treats
    it as a new client."""
    from dist_protocol.features import FEATURES
    port = str(free_port())
    center = processes.start_center("--port", port, "--state-dir", str(tmp_path / "state"))
    processes.start_worker(center.address)
    monkeypatch.setenv("DIST_PROTOCOL_FEATURES",
                       ",".join(name for name in FEATURES if name != "sessions"))
    executor = processes.executor(center.address)
    blocked = executor.submit(time.sleep, 60, pure=False)
    center.kill()
    center.wait(30)
    with pytest.raises(CenterLostError, match="lost the connection"):
        blocked.result(timeout=30)
    processes.start_center("--port", port, "--state-dir", str(tmp_path / "state"))
    assert executor.submit(first, 1, str(tmp_path)).result(timeout=60) == 2


def run_center(*args: str) -> subprocess.CompletedProcess:
    """``dcenter`` expected to stop at once (a state directory it refuses)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIST_")}
    return subprocess.run([sys.executable, "-m", "dist_center.cli", "--host", "127.0.0.1",
                           "--port", "0", "--no-dashboard", *args], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-version", "other-program"])
def test_a_state_directory_that_cannot_be_read_stops_the_center(processes, tmp_path, damage):
    state_dir = tmp_path / "state"
    center = processes.start_center("--state-dir", str(state_dir))
    executor = processes.executor(center.address)
    executor.map(first, range(50), folder=str(tmp_path))  # (no worker: they stay pending)
    wait = time.monotonic() + 30
    database = state_dir / "center.sqlite3"
    while time.monotonic() < wait and _rows(database) < 3:
        time.sleep(0.05)
    executor.close()
    center.stop()
    with sqlite3.connect(database) as db:  # everything in the database file itself
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "garbage":
        database.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        data = database.read_bytes()
        database.write_bytes(data[: len(data) // 2 + 100])
    elif damage == "other-version":
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA user_version=99")
    else:
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA application_id=1")
    before = database.read_bytes()

    refused = run_center("--state-dir", str(state_dir))
    assert refused.returncode == 2, refused.stderr
    assert "cannot use the center's state" in refused.stderr
    assert "--state-dir-reset" in refused.stderr
    expected = {"garbage": "SQLite says", "truncated": "", "other-version": "format 99",
                "other-program": "not a dist center's state"}[damage]
    assert expected in refused.stderr
    assert database.read_bytes() == before  # nothing is dropped without being asked

    reset = processes.start_center("--state-dir", str(state_dir), "--state-dir-reset")
    fresh = processes.executor(reset.address)
    assert fresh.ncores() == {}


def _rows(database: Path) -> int:
    try:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT count(*) FROM journal").fetchone()[0]
    except sqlite3.Error:
        return 0


def imported_value(module):
    return __import__(module).VALUE


def test_uploaded_files_outlive_the_center_for_workers_joining_after(processes, tmp_path):
    port = str(free_port())
    state_dir = str(tmp_path / "state")
    center = processes.start_center("--port", port, "--state-dir", state_dir)
    processes.start_worker(center.address)
    executor = processes.executor(center.address)
    module = tmp_path / "uploaded_durably.py"
    module.write_text("VALUE = 'kept on disk'\n")
    executor.upload_file(module)
    center.kill()
    center.wait(30)
    center = processes.start_center("--port", port, "--state-dir", state_dir)
    late = processes.start_worker(center.address)
    assert executor.submit(imported_value, "uploaded_durably", workers=[late.name],
                           pure=False).result(timeout=60) == "kept on disk"


class KeepsValue:
    name = "keeps-value"

    def setup(self, worker):
        worker.data["kept by the plugin"] = "set up"


def kept_by_the_plugin():
    from dist_client import get_worker
    return get_worker().data.get("kept by the plugin")


def test_worker_plugins_outlive_the_center_for_workers_joining_after(processes, tmp_path):
    port = str(free_port())
    state_dir = str(tmp_path / "state")
    center = processes.start_center("--port", port, "--state-dir", state_dir)
    processes.start_worker(center.address)
    executor = processes.executor(center.address)
    executor.register_plugin(KeepsValue())
    center.kill()
    center.wait(30)
    center = processes.start_center("--port", port, "--state-dir", state_dir)
    late = processes.start_worker(center.address)
    assert executor.submit(kept_by_the_plugin, workers=[late.name],
                           pure=False).result(timeout=60) == "set up"
