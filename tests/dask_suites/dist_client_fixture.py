"""A pytest plugin that runs the client tests of dask's own ``dask/tests/test_distributed.py``
on a dist cluster.

That file imports dask.distributed's ``client`` fixture (as ``c``), ``futures_of`` and
``wait`` (dask.distributed's own ``distributed/tests/test_client.py`` also ``as_completed``,
``Future`` and, for its tasks, ``get_client``, ``secede``...): this plugin puts dist's in
their place before the file is imported, so that each
test's ``c`` is an ``Executor`` of a local dist cluster (a center and two workers of two
threads, one for the session) and dask's default scheduler while the test runs. The tests
written as coroutines against dask.distributed's in-process scheduler and workers
(``gen_cluster``, which read their state) are not collected: they test dask.distributed
itself. dask.distributed must be installed (the file imports it).

Load it with ``-p dist_client_fixture`` with this directory on ``PYTHONPATH`` (README.md).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

_session: dict[str, Any] = {}


@pytest.fixture
def dist_client() -> Iterator[Any]:
    from dist_client import Executor

    with Executor(_session["address"], token=_session["token"]) as executor:
        yield executor


def pytest_configure(config: pytest.Config) -> None:
    import dist_client
    import distributed
    import distributed.utils_test
    from dist_client import Executor

    cluster = Executor(n_workers=2, threads_per_worker=2, dashboard_address=None,
                       set_as_default=False)
    _session.update(cluster=cluster, address=cluster.address, token=cluster.token)
    distributed.utils_test.client = distributed.utils_test.c = client
    import distributed.client
    for module in (distributed, distributed.client):
        module.futures_of = dist_client.futures_of
        module.wait = dist_client.wait
        module.as_completed = dist_client.as_completed
    distributed.client.Future = dist_client.Future
    # in tasks: the worker's executor, as dask's get_client()/worker_client() give its client
    distributed.get_client, distributed.worker_client = (dist_client.get_executor,
                                                         dist_client.worker_executor)
    distributed.secede, distributed.rejoin = dist_client.secede, dist_client.rejoin
    distributed.get_worker = dist_client.get_worker


@pytest.fixture
def client(dist_client: Any) -> Any:
    # (no name given: a fixture takes the name the test file binds it to, ``c`` there)
    return dist_client


c = client  # (the name dask.distributed's own tests use, from a conftest)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import cloudpickle

    kept = [item for item in items
            if "c" in getattr(item, "fixturenames", ()) and "s" not in item.fixturenames]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
    # The workers cannot import a test file outside a package: its functions travel by value.
    for module in {item.module for item in kept if isinstance(item, pytest.Function)}:
        cloudpickle.register_pickle_by_value(module)


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = _session.pop("cluster", None)
    if cluster is not None:
        cluster.close()
