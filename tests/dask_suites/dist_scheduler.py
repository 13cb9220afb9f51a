"""A pytest plugin that runs every dask computation of a session on a dist cluster.

dask's own test suites (``dask/tests``, ``dask/array/tests``, ``dask/dataframe/tests``,
``dask/bag/tests``, installed with dask) then judge dist as dask's scheduler: each test's
``compute``, ``persist`` and ``assert_eq`` go through ``Executor.get``. dask's test helpers
compute with ``scheduler="sync"`` and some tests name ``"threads"`` or ``"processes"``: every
named scheduler is made the executor's ``get`` too, or most of the suite would never leave
the test process. A scheduler given as a function (a test's own) is left alone.

Load it with ``-p dist_scheduler`` with this directory on ``PYTHONPATH`` (README.md here).
``DASK_SUITE_SCHEDULER=distributed`` runs the same session on a dask.distributed
``LocalCluster`` instead, to tell what any distributed scheduler fails from what dist alone
does. The summary line says how many scheduler calls the cluster took, and in how many tests.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import dask
import dask.base
import pytest

N_WORKERS = 2
THREADS_PER_WORKER = 2

_calls = {"total": 0, "tests": 0}
_calls_lock = threading.Lock()
_in_test = threading.local()
_session: dict[str, Any] = {}


def _dist_cluster() -> tuple[Callable, Callable[[], None]]:
    """A local dist cluster (a ``dcenter`` and ``dworker`` processes) and its executor."""
    from dist_client import Executor

    executor = Executor(n_workers=N_WORKERS, threads_per_worker=THREADS_PER_WORKER)
    return executor.get, executor.close


def _distributed_cluster() -> tuple[Callable, Callable[[], None]]:
    """The same on dask.distributed, its client the default as its users have it (dask then
    picks the shuffle methods it picks for a distributed cluster)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=N_WORKERS, threads_per_worker=THREADS_PER_WORKER,
                           processes=True, dashboard_address=None)
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    return client.get, close


def _counted(get: Callable) -> Callable:
    def cluster_get(dsk: Any, keys: Any, **kwargs: Any) -> Any:
        with _calls_lock:
            _calls["total"] += 1
        _in_test.calls = getattr(_in_test, "calls", 0) + 1
        return get(dsk, keys, **kwargs)

    return cluster_get


def pytest_configure(config: pytest.Config) -> None:
    backend = os.environ.get("DASK_SUITE_SCHEDULER", "dist")
    get, close = _distributed_cluster() if backend == "distributed" else _dist_cluster()
    cluster_get = _counted(get)
    for name in list(dask.base.named_schedulers):
        dask.base.named_schedulers[name] = cluster_get
    # (this module's frame is the scheduler's, which dask leaves out of a task's traceback)
    shorten = [*dask.config.get("admin.traceback.shorten", []), r"dist_scheduler\.py"]
    settings = dask.config.set({"scheduler": cluster_get, "admin.traceback.shorten": shorten})
    _session.update(backend=backend, close=close, settings=settings)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    _in_test.calls = 0
    try:
        return (yield)
    finally:
        if _in_test.calls:
            _calls["tests"] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"[dask suites on {_session.get('backend')}] {_calls['total']} scheduler calls "
        f"went to the cluster, from {_calls['tests']} tests")


def pytest_unconfigure(config: pytest.Config) -> None:
    if "close" in _session:
        _session.pop("settings").__exit__(None, None, None)
        _session.pop("close")()
