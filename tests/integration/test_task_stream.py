"""``get_task_stream``: the task runs the center recorded, as dask's client gives them."""
from __future__ import annotations

import asyncio
import time

import pytest

from dist_client import ClusterError, Executor, get_task_stream
from dist_protocol.features import FEATURES

pytestmark = pytest.mark.timeout(120)


def inc(x):
    return x + 1


def test_records_of_runs_as_dask_gives_them(executor):
    futures = executor.map(inc, range(6))
    executor.gather(futures)
    wanted = {f.key for f in futures}
    records = [r for r in executor.get_task_stream() if r["key"] in wanted]
    assert {r["key"] for r in records} == wanted
    workers = set(executor.ncores())
    for r in records:
        assert r["worker"] in workers and r["status"] == "OK" and r["nbytes"] > 0
        (compute,) = r["startstops"]
        assert compute["action"] == "compute" and compute["start"] <= compute["stop"]
    assert len(executor.get_task_stream(count=2)) == 2
    assert executor.get_task_stream(count=2) == executor.get_task_stream()[-2:]
    assert len(executor.get_task_stream(start="1h")) >= 6
    assert executor.get_task_stream(start=time.time() + 3600) == []
    assert executor.get_task_stream(stop=0) == []
    with pytest.raises(TypeError, match="start must be"):
        executor.get_task_stream(start=[1])


def fail(x):
    raise ValueError(f"no {x}")


def test_failed_runs_have_status_error(executor):
    future = executor.submit(fail, 7, pure=False)
    with pytest.raises(ValueError, match="no 7"):
        future.result()
    (record,) = [r for r in executor.get_task_stream() if r["key"] == future.key]
    assert record["status"] == "error" and record["worker"] in set(executor.ncores())
    (compute,) = record["startstops"]
    assert compute["action"] == "compute" and compute["start"] <= compute["stop"]


def test_an_input_fetched_from_another_worker_is_a_transfer(executor):
    first, second = sorted(executor.ncores())
    x = executor.submit(inc, 1, workers=[first])
    y = executor.submit(inc, x, workers=[second])
    assert y.result(60) == 3
    (record,) = [r for r in executor.get_task_stream() if r["key"] == y.key]
    transfer, compute = record["startstops"]
    assert transfer["action"] == "transfer" and transfer["source"] == first
    assert transfer["start"] <= transfer["stop"]
    assert compute["action"] == "compute" and record["worker"] == second
    (record,) = [r for r in executor.get_task_stream() if r["key"] == x.key]
    assert [s["action"] for s in record["startstops"]] == ["compute"]


def test_context_manager_collects_the_runs_of_its_block(executor):
    before = executor.map(inc, range(100, 104))
    executor.gather(before)
    with get_task_stream(executor) as ts:
        inside = executor.map(inc, range(200, 205))
        executor.gather(inside)
    assert sorted(r["key"] for r in ts.data) == sorted(f.key for f in inside)
    with get_task_stream() as idle:  # the default executor
        pass
    assert idle.data == []


def test_async_executor(cluster):
    async def main() -> tuple[list, list]:
        async with Executor(cluster.address, asynchronous=True) as e:
            async with get_task_stream(e) as ts:
                future = e.submit(inc, 41)
                assert await future == 42
            return ts.data, await e.get_task_stream(count=1)

    data, newest = asyncio.run(asyncio.wait_for(main(), 60))
    assert [r["key"] for r in data] == [r["key"] for r in newest]


def test_center_without_the_feature_is_a_clear_error(make_cluster):
    older = {"DIST_PROTOCOL_FEATURES": ",".join(f for f in FEATURES if f != "task-stream")}
    old = make_cluster(n_workers=0, env=older)
    with Executor(old.address) as e:
        with pytest.raises(ClusterError, match="task-stream"):
            e.get_task_stream()
