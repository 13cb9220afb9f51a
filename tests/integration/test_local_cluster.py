"""``Executor()`` with no address: a local center and workers as subprocesses that see the
client's ``sys.path`` and working directory, gone again after ``close()``."""
from __future__ import annotations

import os
import textwrap
import threading
import uuid

import psutil
import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def gone(pids: set[int]) -> bool:
    """True when none of ``pids`` is running any more (a zombie waiting for init counts)."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of the user's own, importable here only because its folder is on sys.path."""
    name = f"user_tasks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""\
        import os


        def triple(x):
            return 3 * x


        def read_relative(path):
            with open(path) as f:
                return f.read()


        def where():
            return os.getpid(), os.getcwd()


        def reject(x):
            raise LookupError(f"rejected {x}")
    """))
    (tmp_path / "notes.txt").write_text("relative to the working directory")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    module = __import__(name)
    yield module
    del module


def test_executor_without_an_address_starts_computes_and_leaves_nothing(user_module, tmp_path,
                                                                         wait_until):
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    e = Executor(n_workers=2, threads_per_worker=1)
    try:
        started = {p.pid for p in me.children(recursive=True)} - before
        # A center and two workers, each worker under its nanny.
        assert len(started) >= 3, started
        assert len(e.ncores()) == 2 and set(e.ncores().values()) == {1}

        # Sent by reference: it works only because the workers import it from sys.path.
        assert e.submit(user_module.triple, 14).result(timeout=RESULT_TIMEOUT) == 42
        assert e.gather(e.map(user_module.triple, range(4)), timeout=RESULT_TIMEOUT) == [0, 3, 6,
                                                                                         9]
        assert e.submit(user_module.read_relative, "notes.txt").result(
            timeout=RESULT_TIMEOUT) == "relative to the working directory"
        pids_and_dirs = e.gather([e.submit(user_module.where, pure=False) for _ in range(6)],
                                 timeout=RESULT_TIMEOUT)
        assert {cwd for _, cwd in pids_and_dirs} == {os.getcwd()}
        assert {pid for pid, _ in pids_and_dirs} <= started

        # Its source file is there, so the remote traceback quotes the line that raised.
        failing = e.submit(user_module.reject, 5)
        with pytest.raises(LookupError, match="rejected 5"):
            failing.result(timeout=RESULT_TIMEOUT)
        assert 'raise LookupError(f"rejected {x}")' in failing.traceback_text()
    finally:
        e.close()

    assert e.status == "closed"
    wait_until(lambda: gone(started), 15, f"the local cluster's processes {started} to exit")
    assert not ({p.pid for p in me.children(recursive=True)} - before)


def test_the_local_cluster_stops_when_its_executor_leaves_a_with_block(wait_until):
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with Executor(n_workers=1, threads_per_worker=2) as e:
        started = {p.pid for p in me.children(recursive=True)} - before
        assert e.ncores() == {next(iter(e.ncores())): 2} == e.nthreads()
        assert e.submit(sum, e.scatter([1, 2, 3])).result(timeout=RESULT_TIMEOUT) == 6
        # dask's Client.scheduler_info() and dashboard_link, for code written against them
        info = e.scheduler_info()
        assert info["address"] == e.address and list(info["workers"]) == list(e.nthreads())
        [worker] = info["workers"].values()
        assert worker["nthreads"] == 2 and worker["host"] == "127.0.0.1"
        assert worker["status"] == "running" and worker["memory_limit"] > 0 and "metrics" in worker
        assert e.dashboard_link and e.dashboard_link.startswith("http")
    wait_until(lambda: gone(started), 15, f"the local cluster's processes {started} to exit")


def test_a_local_cluster_started_in_a_thread_outlives_that_thread(wait_until):
    """As in a web app or a thread pool: the thread that made the Executor ends, the cluster
    stays until ``close()``."""
    made: list[Executor] = []
    starter = threading.Thread(target=lambda: made.append(Executor(n_workers=1,
                                                                    threads_per_worker=1)))
    starter.start()
    starter.join(RESULT_TIMEOUT)
    [e] = made
    try:
        started = {p.pid for p in e.cluster.processes}
        assert e.submit(sum, [1, 2]).result(timeout=RESULT_TIMEOUT) == 3
        assert all(p.poll() is None for p in e.cluster.processes)
    finally:
        e.close()
    wait_until(lambda: gone(started), 15, f"the local cluster's processes {started} to exit")


def test_memory_limit_applies_to_each_worker_of_the_local_cluster():
    """As dask's ``Client(n_workers=2, memory_limit="2GB")``: the limit is per worker."""
    import json
    import urllib.request

    with Executor(n_workers=2, threads_per_worker=1, memory_limit="300MB") as e:
        assert e.submit(sum, [1, 2]).result(timeout=RESULT_TIMEOUT) == 3
        with urllib.request.urlopen(e.cluster.dashboard_link.rstrip("/") + "/api/workers",
                                    timeout=RESULT_TIMEOUT) as response:
            workers = json.load(response)["workers"]
        assert [w["memory_limit"] for w in workers] == [300_000_000, 300_000_000]


def test_local_cluster_options_beside_an_address_are_refused():
    with pytest.raises(TypeError, match="memory_limit"):
        Executor("127.0.0.1:1", memory_limit="1GB")
    with pytest.raises(ValueError, match="threads_per_worker"):
        Executor(threads_per_worker=0)


def test_a_local_cluster_leaves_no_resource_warning_under_python_dev_mode(tmp_path):
    """``python -X dev`` or ``-W error`` (as test suites run) show every file left open: the
    pipes the cluster's output came through were, once its processes ended."""
    import subprocess
    import sys

    script = tmp_path / "use_a_local_cluster.py"
    script.write_text(textwrap.dedent("""\
        from dist_client import Executor

        with Executor(n_workers=1, threads_per_worker=1, dashboard_address=None) as e:
            print("sum", e.submit(sum, [1, 2, 3]).result(timeout=30))
    """))
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error", str(script)],
                          capture_output=True, text=True, timeout=RESULT_TIMEOUT * 2,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sum 6" in done.stdout
    assert "ResourceWarning" not in done.stderr, done.stderr


def end_the_process():
    os._exit(3)


def test_a_worker_that_died_last_leaves_no_spill_folder_after_close(tmp_path):
    """The folder of a worker that died was removed by the next worker to start there; after
    a task's third death (``KilledWorker``) none starts once the executor closes."""
    from dist_client.errors import KilledWorker

    with Executor(n_workers=1, threads_per_worker=1, dashboard_address=None,
                  local_directory=str(tmp_path)) as e:
        with pytest.raises(KilledWorker):
            e.submit(end_the_process).result(timeout=RESULT_TIMEOUT * 2)
    assert os.listdir(tmp_path) == []
