"""A pytest plugin that runs the synchronous client tests of dask's ``dask/tests/
test_distributed.py`` and of dask.distributed's own ``distributed/tests/`` on a dist cluster.

Those files take dask.distributed's fixtures (``c``/``client``, ``loop``, ``s``/``a``/``b``:
the addresses of a scheduler and two workers), start clusters with its ``cluster()`` and
connect with its ``Client``, and import its public names (``wait``, ``as_completed``,
``Lock``, ``Queue``, ``Actor``...). This plugin puts dist's in their place before a test file
is imported: each test's ``c`` is an ``Executor`` of a local dist cluster (a center and two
workers of two threads, one for the session) and dask's default scheduler while the test
runs; ``cluster()`` starts a dist cluster of its own; ``Client`` is ``Executor`` (taking and
ignoring dask's ``loop=``). The tests written as coroutines against dask.distributed's
in-process scheduler and workers (``gen_cluster``, ``gen_test``, which read their state) are
not collected: they test dask.distributed itself. dask.distributed must be installed.

Load it with ``-p dist_client_fixture`` with this directory on ``PYTHONPATH`` (README.md).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

_session: dict[str, Any] = {}

# The fixtures that make a test one of those run here (with ``s``/``a``/``b`` it reads only
# their addresses).
_CLIENT_FIXTURES = {"c", "client", "loop", "s"}


# Test files whose tests name coordination primitives and datasets alike ("x"), which live
# on the center until deleted: each of their tests gets a cluster of its own, as each of
# dask's tests does.
_OWN_CLUSTER = {"test_events", "test_locks", "test_multi_locks", "test_queues",
                "test_variable", "test_semaphore", "test_publish"}


@pytest.fixture
def dist_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    from dist_client import Executor

    # (the file's name alone: pytest names a module by its package or import mode)
    if request.module.__name__.rpartition(".")[2] in _OWN_CLUSTER:
        own = Executor(n_workers=2, threads_per_worker=2, dashboard_address=None)
        try:
            yield own
        finally:
            own.close()
        return
    executor = Executor(_session["address"], token=_session["token"])
    try:
        yield executor
    finally:
        # A test that failed may leave a task blocked for good (on an event it never set),
        # even one whose key is released: the next tests need the session's worker threads.
        failed = getattr(request.node, "dist_call_failed", False)
        if executor.status == "running" and (failed or any(executor.processing().values())):
            executor.restart()
            _session["workers"] = sorted(executor.scheduler_info()["workers"])
        executor.close()  # as dask's client: without waiting for its running tasks


@pytest.fixture
def client(dist_client: Any) -> Any:
    # (no name given: a fixture takes the name the test file binds it to, ``c`` there)
    return dist_client


c = client  # (the name dask.distributed's own tests use, from a conftest)


@pytest.fixture
def loop() -> None:
    """dask's tests hand their event loop to ``Client(loop=)``, which dist's ignores."""
    return None


@pytest.fixture
def cleanup() -> None:
    return None


@pytest.fixture
def s() -> dict[str, Any]:
    return {"address": _session["address"]}


@pytest.fixture
def a() -> dict[str, Any]:
    return {"address": _session["workers"][0]}


@pytest.fixture
def b() -> dict[str, Any]:
    return {"address": _session["workers"][1]}


def _client_class() -> type:
    from dist_client import Executor

    class Client(Executor):
        """dask's ``Client(address, loop=...)``: an ``Executor``."""

        def __init__(self, address: Any = None, *, loop: Any = None, **options: Any):
            super().__init__(address, **options)

        def __exit__(self, *exc_info: Any) -> None:
            # dask's ``with Client()`` closes without waiting for the tasks still running,
            # where ``with Executor()``, as any ``concurrent.futures`` executor, waits
            self.close()

    return Client


@contextlib.contextmanager
def cluster(nworkers: int = 2, nanny: bool = False, worker_kwargs: Any = None,
            active_rpc_timeout: Any = 10, scheduler_kwargs: Any = None,
            config: Any = None) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """dask's ``cluster()``: a dist cluster of ``nworkers`` workers of one thread (of the
    ``memory_limit`` of ``worker_kwargs``, if given), with the scheduler's and the workers'
    addresses."""
    from dist_client import Executor
    from dist_client.local import LocalCluster

    memory_limit = (worker_kwargs or {}).get("memory_limit")
    local = LocalCluster(n_workers=nworkers, threads_per_worker=1, dashboard_address=None,
                         memory_limit=memory_limit)
    previous = os.environ.get("DIST_TOKEN")
    os.environ["DIST_TOKEN"] = local.token  # a ``Client(address)`` of the test connects
    try:
        with Executor(local, set_as_default=False) as probe:
            probe.wait_for_workers(nworkers)
            pids = probe.run(os.getpid)
        yield {"address": local.address}, [{"address": w, "proc": _WorkerProcess(pids[w]).ref}
                                           for w in sorted(pids)]
    finally:
        os.environ["DIST_TOKEN"] = previous or _session["token"]
        local.close()


class _WorkerProcess:
    """What dask's ``cluster()`` gives as a worker's ``"proc"`` (a reference to its process,
    which its tests call, then ``terminate()``)."""

    def __init__(self, pid: int):
        self.pid = pid

    def ref(self) -> _WorkerProcess:
        return self

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)


def _local_cluster_class() -> type:
    from dist_client.local import LocalCluster as DistLocalCluster

    class LocalCluster(DistLocalCluster):
        """dask's ``LocalCluster(loop=...)``: dist's."""

        def __init__(self, *args: Any, loop: Any = None, **options: Any):
            super().__init__(*args, **options)

    return LocalCluster


def _dist_names() -> dict[str, Any]:
    import dist_client

    return {
        "Client": _client_class(), "LocalCluster": _local_cluster_class(),
        "futures_of": dist_client.futures_of, "wait": dist_client.wait,
        "as_completed": dist_client.as_completed,
        "Future": dist_client.Future, "default_client": dist_client.default_executor,
        "fire_and_forget": dist_client.fire_and_forget,
        "Lock": dist_client.Lock, "Queue": dist_client.Queue,
        "Variable": dist_client.Variable, "Event": dist_client.Event,
        "Semaphore": dist_client.Semaphore, "MultiLock": dist_client.MultiLock,
        "Reschedule": dist_client.Reschedule, "Pub": dist_client.Pub, "Sub": dist_client.Sub,
        "Actor": dist_client.Actor, "BaseActorFuture": dist_client.ActorFuture,
        "ActorFuture": dist_client.ActorFuture,
        "get_client": dist_client.get_client, "worker_client": dist_client.worker_client,
        "secede": dist_client.secede, "rejoin": dist_client.rejoin,
        "get_worker": dist_client.get_worker,
    }


def pytest_configure(config: pytest.Config) -> None:
    import importlib

    from dist_client import Executor

    session = Executor(n_workers=2, threads_per_worker=2, dashboard_address=None,
                       set_as_default=False)
    session.wait_for_workers(2)
    _session.update(cluster=session, address=session.address, token=session.token,
                    workers=sorted(session.scheduler_info()["workers"]))
    os.environ["DIST_TOKEN"] = session.token  # for a test's own ``Client(s["address"])``
    import distributed.utils_test as utils_test
    for name, fixture in {"client": client, "c": c, "loop": loop, "cleanup": cleanup,
                          "s": s, "a": a, "b": b, "cluster": cluster}.items():
        setattr(utils_test, name, fixture)
    names = _dist_names()
    for module_name in ("distributed", "distributed.client", "distributed.actor",
                        "distributed.event", "distributed.lock", "distributed.queues",
                        "distributed.variable", "distributed.semaphore", "distributed.multi_lock",
                        "distributed.worker", "distributed.worker_client", "dask.distributed"):
        module = importlib.import_module(module_name)
        for name, value in names.items():
            if hasattr(module, name):
                setattr(module, name, value)


def _runs_here(item: pytest.Item) -> bool:
    function = getattr(item, "obj", None)
    if function is None or inspect.iscoroutinefunction(inspect.unwrap(function)):
        return False
    return bool(_CLIENT_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import cloudpickle

    kept = [item for item in items if _runs_here(item)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
    # The workers cannot import a test file outside a package: its functions travel by value.
    for module in {item.module for item in kept if isinstance(item, pytest.Function)}:
        cloudpickle.register_pickle_by_value(module)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.dist_call_failed = True  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    session = _session.pop("cluster", None)
    if session is not None:
        session.close()
