"""Use over a long time: threads a task starts reach the cluster as the task does (as dask's
``get_client()`` works from them); executors opened and closed again and again leave no
thread or file behind."""
from __future__ import annotations

import concurrent.futures
import gc
import threading

import psutil
import pytest
from dist_client import Executor, get_executor, get_worker

pytestmark = pytest.mark.timeout(120)


def inc(x):
    return x + 1


def from_threads_of_the_task(n):
    """Submits from threads the task starts, and reads the worker from them."""
    def one(i):
        executor = get_executor()
        return executor.submit(inc, i).result(timeout=30), get_worker().address, executor

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(n)))
    here = get_worker().address
    return ([value for value, _, _ in results], {address == here for _, address, _ in results},
            {executor is get_executor() for _, _, executor in results})


def dask_from_a_thread_of_the_task():
    dask = pytest.importorskip("dask")
    box = []
    thread = threading.Thread(target=lambda: box.append(
        dask.delayed(inc)(dask.delayed(inc)(1)).compute()))
    thread.start()
    thread.join(60)
    return box


@pytest.mark.cluster(n_workers=1, nthreads=2)
def test_threads_a_task_starts_reach_the_cluster_as_the_task(cluster):
    executor = cluster.executor()
    values, same_worker, same_executor = executor.submit(from_threads_of_the_task, 8).result(
        timeout=60)
    assert values == list(range(1, 9))
    assert same_worker == {True} and same_executor == {True}
    assert executor.submit(dask_from_a_thread_of_the_task).result(timeout=60) == [3]


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_executors_opened_and_closed_in_a_loop_leave_nothing_behind(cluster):
    process = psutil.Process()

    def used():
        gc.collect()
        return threading.active_count(), process.num_fds()

    with Executor(cluster.address) as first:
        assert first.submit(inc, 0).result(timeout=30) == 1
    before = used()
    for i in range(60):
        with Executor(cluster.address) as executor:
            assert executor.submit(inc, i).result(timeout=30) == i + 1
    assert used() == before
