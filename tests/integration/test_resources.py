"""``resources=``: workers declare abstract resources (``dworker --resources "GPU=1"``); a task
that asks for some runs only where they are, never more at once than a worker has."""
from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30


def timed(i, delay=0.2):
    start = time.time()
    time.sleep(delay)
    return os.getpid(), start, time.time()


def test_tasks_asking_for_a_resource_run_one_at_a_time_where_it_is(make_cluster, processes):
    cluster = make_cluster(n_workers=1, nthreads=2)
    gpu = processes.start_worker(cluster.address, "--resources", "GPU=1", nthreads=2)
    cluster.workers.append(gpu)
    with cluster.executor() as e:
        cluster.wait_for_workers(e, 2)
        pids = cluster.worker_pids(e)
        futures = e.map(timed, range(4), resources={"GPU": 1}, pure=False)
        others = e.map(timed, range(4, 8), pure=False)
        runs = e.gather(futures, timeout=RESULT_TIMEOUT)
        e.gather(others, timeout=RESULT_TIMEOUT)

    assert {pid for pid, _, _ in runs} == {pids[gpu.address]}
    spans = sorted((start, stop) for _, start, stop in runs)
    assert all(later[0] >= earlier[1] - 0.01 for earlier, later in zip(spans, spans[1:])), \
        spans  # one GPU: never two at once, though the worker has two threads


def test_a_task_asking_for_what_no_worker_has_waits_until_one_joins(make_cluster, processes):
    cluster = make_cluster(n_workers=1)
    with cluster.executor() as e:
        future = e.submit(timed, 0, 0.0, resources={"GPU": 2}, pure=False)
        time.sleep(0.5)
        assert future.status == "pending"
        gpus = processes.start_worker(cluster.address, "--resources", "GPU=2")
        assert future.result(timeout=RESULT_TIMEOUT)[0] == cluster.worker_pids(e)[gpus.address]


def test_a_malformed_resources_option_is_refused(start_center, start_worker):
    center = start_center()
    worker = start_worker(center.address, "--resources", "GPU", wait=False)
    assert worker.wait(30) == 2
    assert "NAME=AMOUNT" in worker.output()


def pid(_: object = None) -> int:
    return os.getpid()


@pytest.mark.parametrize("how", ["compute", "persist", "get"])
def test_resources_given_to_a_dask_call_are_what_each_of_its_tasks_needs(make_cluster,
                                                                          processes, how):
    dask = pytest.importorskip("dask")
    cluster = make_cluster(n_workers=1)
    gpu = processes.start_worker(cluster.address, "--resources", "GPU=1")
    cluster.workers.append(gpu)
    with cluster.executor() as e:
        cluster.wait_for_workers(e, 2)
        gpu_pid = cluster.worker_pids(e)[gpu.address]
        parts = [dask.delayed(pid, pure=False)(i) for i in range(4)]
        together = dask.delayed(set)(parts)
        # (A dict of amounts, as dask's Client.compute takes it, was read as a dict of keys:
        # "restrictions name keys the graph does not have: ['GPU']".)
        if how == "compute":
            ran = e.compute(together, resources={"GPU": 1}).result(RESULT_TIMEOUT)
        elif how == "persist":
            ran = e.persist(together, resources={"GPU": 1}).compute(scheduler=e.get)
        else:
            (ran,) = dask.compute(together, scheduler=e.get, resources={"GPU": 1})
        assert ran == {gpu_pid}
        by_key = {part.key: {"GPU": 1} for part in parts}
        assert e.compute(together, resources=by_key).result(RESULT_TIMEOUT) == {gpu_pid}
