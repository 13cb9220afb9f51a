"""dask's restart_workers between real processes: the workers named get a fresh process from
their nannies, the others keep theirs and their values, and a worker without a nanny is
refused before anything happens."""
from __future__ import annotations

import os

import pytest
from dist_client import AsyncExecutor

pytestmark = pytest.mark.timeout(180)

RESULT_TIMEOUT = 60


def inc(x):
    return x + 1


def by_name(executor):
    """{worker name: pid of its process}."""
    names = {address: info["name"]
             for address, info in executor.scheduler_info()["workers"].items()}
    return {names[address]: pid for address, pid in executor.run(os.getpid).items()}


@pytest.mark.cluster(n_workers=2, nanny=True)
def test_only_the_workers_named_restart_and_the_others_keep_their_values(cluster):
    e = cluster.executor()
    first, second = cluster.workers
    kept = e.submit(inc, 1, workers=[second.name])
    assert kept.result(RESULT_TIMEOUT) == 2
    before = by_name(e)

    assert e.restart_workers([first.name], timeout=60) == {first.name: "OK"}

    after = by_name(e)
    assert set(after) == {first.name, second.name}
    assert after[first.name] != before[first.name]  # a fresh process
    assert after[second.name] == before[second.name]
    assert kept.result(RESULT_TIMEOUT) == 2 and e.who_has(kept)[kept.key]
    assert e.submit(inc, 2, workers=[first.name]).result(RESULT_TIMEOUT) == 3


@pytest.mark.cluster(n_workers=1, nanny=True)
def test_an_asynchronous_executor_restarts_a_worker_by_address(cluster):
    import asyncio

    async def main():
        async with AsyncExecutor(cluster.address) as e:
            address = next(iter((await e.scheduler_info())["workers"]))
            return address, await e.restart_workers([address], timeout="60s")

    address, status = asyncio.run(main())
    assert status == {address: "OK"}


@pytest.mark.cluster(n_workers=1, heartbeat_timeout=120)
def test_a_worker_without_a_nanny_is_a_clear_error_and_is_not_restarted(cluster):
    e = cluster.executor()
    [worker] = cluster.workers
    pids = e.run(os.getpid)
    with pytest.raises(ValueError, match="requires a nanny.*" + worker.name):
        e.restart_workers([worker.name])
    with pytest.raises(ValueError, match="no worker 'nowhere:1'"):
        e.restart_workers(["nowhere:1"])
    assert e.run(os.getpid) == pids


@pytest.mark.cluster(n_workers=2, nanny=True, heartbeat_timeout=120)
def test_a_worker_not_back_in_time_is_a_timeout_or_its_status(cluster, wait_until):
    e = cluster.executor()
    first, second = cluster.workers
    old = by_name(e)[second.name]
    second.suspend()  # its nanny too: told to restart, it cannot until resumed
    try:
        with pytest.raises(TimeoutError, match="1/2 worker"):
            e.restart_workers([first.name, second.name], timeout=3)
    finally:
        second.resume()  # (it restarts now, as it was told)
    def second_restarted():
        try:
            return by_name(e).get(second.name) not in (None, old)
        except Exception:  # noqa: BLE001 -- a worker left while asked: it is restarting
            return False
    wait_until(second_restarted, 60, "the second worker to be back from its restart")
    second.suspend()
    try:
        status = e.restart_workers([first.name, second.name], timeout=3,
                                   raise_for_error=False)
    finally:
        second.resume()
    assert status == {first.name: "OK", second.name: "timed out"}
