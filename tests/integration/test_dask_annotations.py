"""``dask.annotate``: the workers, resources, retries and priority it gives tasks hold on the
cluster, through every way dist runs dask (``Executor.compute``, ``e.get`` as dask's scheduler,
``Executor.persist``), as dask.distributed holds them."""
from __future__ import annotations

import asyncio
import os

import pytest

dask = pytest.importorskip("dask")

from dask import delayed  # noqa: E402
from dist_client import Executor  # noqa: E402

pytestmark = pytest.mark.timeout(90)
RESULT_TIMEOUT = 30


def pid(_: object = None) -> int:
    return os.getpid()


def pids(*found: int) -> set[int]:
    return set(found)


def fail_twice(marker: str) -> int:
    """Fails on its first two runs, then says how many there were."""
    with open(marker, "a+") as f:
        f.seek(0)
        runs = len(f.read())
        f.write("x")
    if runs < 2:
        raise ValueError(f"run {runs + 1} fails")
    return runs + 1


def logged(name: str, log: str, *_: object) -> str:
    with open(log, "a") as f:
        f.write(name + "\n")
    return name


@pytest.mark.parametrize("how", ["compute", "get", "persist"])
def test_annotated_workers_run_the_tasks(make_cluster, how):
    cluster = make_cluster(n_workers=2)
    with cluster.executor() as e:
        cluster.wait_for_workers(e, 2)
        for worker, worker_pid in cluster.worker_pids(e).items():
            with dask.annotate(workers=[worker]):
                parts = [delayed(pid, pure=False)(i) for i in range(6)]
            together = delayed(pids)(*parts)
            if how == "compute":
                ran = e.compute(together).result(RESULT_TIMEOUT)
            elif how == "get":
                (ran,) = dask.compute(together, scheduler=e.get)
            else:
                ran = e.persist(together).compute(scheduler=e.get)
            assert ran == {worker_pid}, f"annotated for {worker}"


def test_an_annotated_resource_waits_for_a_worker_that_has_it(make_cluster, processes):
    cluster = make_cluster(n_workers=1)
    with cluster.executor() as e:
        cluster.wait_for_workers(e, 1)
        with dask.annotate(resources={"GPU": 1}):
            on_gpu = delayed(pid, pure=False)()
        future = e.compute(on_gpu)
        gpu = processes.start_worker(cluster.address, "--resources", "GPU=1")
        # (Without the annotation the task ran on the first worker before this one joined.)
        assert future.result(RESULT_TIMEOUT) == cluster.worker_pids(e)[gpu.address]


def test_annotated_retries_rerun_a_failing_task(cluster, executor, tmp_path):
    with dask.annotate(retries=2):
        flaky = delayed(fail_twice, pure=False)(str(tmp_path / "runs"))
    assert executor.compute(flaky).result(RESULT_TIMEOUT) == 3


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_an_annotated_priority_runs_first_among_its_graphs_ready_tasks(cluster, executor,
                                                                       tmp_path):
    log = str(tmp_path / "log")
    first = delayed(abs, pure=False)(-1)  # all the others become ready when it has run
    plain = [delayed(logged, pure=False)(f"plain-{i}", log, first) for i in range(12)]
    with dask.annotate(priority=1):
        urgent = delayed(logged, pure=False)("urgent", log, first)
    executor.compute(delayed(list)([*plain, urgent])).result(RESULT_TIMEOUT)
    with open(log) as f:
        assert f.read().split()[0] == "urgent"


def test_an_annotation_the_cluster_cannot_take_is_refused_naming_it(cluster, executor):
    with dask.annotate(retries=-1):
        bad = delayed(abs, pure=False)(-1)
    with pytest.raises(ValueError, match=r"dask.annotate\(retries=-1\) of the task .*abs"):
        executor.compute(bad)
    assert executor.compute(delayed(abs, pure=False)(-2)).result(RESULT_TIMEOUT) == 2


def test_a_dask_annotate_block_holds_for_every_task_sent_inside_it(make_cluster):
    cluster = make_cluster(n_workers=2)
    with cluster.executor() as e:
        cluster.wait_for_workers(e, 2)
        (first, first_pid), (second, second_pid) = sorted(cluster.worker_pids(e).items())
        parts = delayed(pids)(*[delayed(pid, pure=False)(i) for i in range(6)])  # (outside)
        with dask.annotate(workers=[first]):
            assert e.submit(pid, pure=False).result(RESULT_TIMEOUT) == first_pid
            assert set(e.gather(e.map(pid, range(6), pure=False))) == {first_pid}
            assert e.compute(parts).result(RESULT_TIMEOUT) == {first_pid}
            assert dask.compute(parts, scheduler=e.get)[0] == {first_pid}
            assert e.persist(parts).compute(scheduler=e.get) == {first_pid}
            # The call's own options come first, as with dask.distributed.
            assert e.submit(pid, workers=[second], pure=False).result(RESULT_TIMEOUT) \
                == second_pid
        assert set(e.gather(e.map(pid, range(20), pure=False))) == {first_pid, second_pid}


def test_a_dask_annotate_block_holds_for_a_plain_graph_and_an_asynchronous_executor(
        make_cluster):
    cluster = make_cluster(n_workers=2)
    with cluster.executor() as e:
        cluster.wait_for_workers(e, 2)
        (first, first_pid), _ = sorted(cluster.worker_pids(e).items())
        graph = {f"part-{i}": (pid, i) for i in range(6)}
        graph["all"] = (pids, *[f"part-{i}" for i in range(6)])
        with dask.annotate(workers=[first]):
            assert e.get(graph, "all") == {first_pid}

        async def in_a_block():
            async with Executor(cluster.address, asynchronous=True) as ae:
                with dask.annotate(workers=[first]):
                    futures = ae.map(pid, range(6), pure=False)
                    futures.append(ae.submit(pid, pure=False))
                return set(await ae.gather(futures))

        assert asyncio.run(in_a_block()) == {first_pid}
