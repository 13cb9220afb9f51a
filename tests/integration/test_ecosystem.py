"""dist where people work: dask graphs, asyncio, concurrent.futures, run/upload_file, progress.

Runs against a local cluster of real dcenter/dworker subprocesses (``Executor()``).
"""
import asyncio
import concurrent.futures
import io
import os

import pytest
from dist_client import AsyncExecutor, Executor, Future, progress

pytestmark = pytest.mark.timeout(120)


def inc(x):
    return x + 1


@pytest.fixture(scope="module")
def e():
    with Executor(n_workers=2, threads_per_worker=1) as executor:
        yield executor


def test_dask_array_dataframe_and_delayed(e):
    dask = pytest.importorskip("dask")
    import dask.array as da
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    x = da.arange(10_000, chunks=1_000)
    (total,) = dask.compute((x * 2).sum(), scheduler=e.get)
    assert total == 2 * sum(range(10_000))

    frame = pd.DataFrame({"a": np.arange(100), "b": np.arange(100) % 3})
    ddf = dd.from_pandas(frame, npartitions=4)
    with e.as_dask_scheduler():
        grouped = ddf.groupby("b").a.sum().compute()
        doubled = dask.delayed(sum)([dask.delayed(inc)(i) for i in range(10)]).compute()
    assert grouped.to_dict() == frame.groupby("b").a.sum().to_dict()
    assert doubled == sum(range(1, 11))


def test_compute_gives_futures_for_dask_collections(e):
    dask = pytest.importorskip("dask")
    import dask.array as da
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    x = da.arange(10_000, chunks=1_000)
    frame = pd.DataFrame({"a": np.arange(100), "b": np.arange(100) % 3})
    ddf = dd.from_pandas(frame, npartitions=4)
    total = e.compute((x * 2).sum())
    assert isinstance(total, Future)
    assert total.result(timeout=60) == 2 * sum(range(10_000))
    grouped, whole, delayed = e.compute([ddf.groupby("b").a.sum(), ddf,
                                         dask.delayed(sum)([dask.delayed(inc)(i)
                                                            for i in range(10)])])
    assert grouped.result(timeout=60).to_dict() == frame.groupby("b").a.sum().to_dict()
    assert whole.result(timeout=60).equals(frame)
    assert delayed.result(timeout=60) == sum(range(1, 11))
    # The value stays on the cluster: tasks take the future as any other.
    assert e.submit(len, e.compute(ddf)).result(timeout=60) == 100


def test_wait_for_workers(e):
    e.wait_for_workers(2, timeout=30)
    with pytest.raises(TimeoutError, match="fewer than 3 workers"):
        e.wait_for_workers(3, timeout=0.3)


def test_concurrent_futures_compatibility(e):
    assert isinstance(e, concurrent.futures.Executor)
    future = e.submit(inc, 1)
    assert isinstance(future, concurrent.futures.Future)
    assert concurrent.futures.wait([future], timeout=30).done == {future}

    async def main():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(e, inc, 41)
    assert asyncio.run(main()) == 42

    strict = e.get_executor()
    assert list(strict.map(inc, range(5))) == [1, 2, 3, 4, 5]
    strict.shutdown(wait=True)


def test_asyncio_executor(e):
    async def main():
        async with AsyncExecutor(e.address, token=e.token) as ae:
            future = ae.submit(inc, 10)
            assert await future == 11
            values = await ae.gather(ae.map(inc, range(3)))
            [scattered] = await ae.scatter([100])
            await ae.wait_for_workers(2, timeout=30)
            dask = pytest.importorskip("dask")
            total = await ae.compute(dask.delayed(sum)([1, 2, 3]))
            return values, await ae.submit(inc, scattered), total
    values, last, total = asyncio.run(main())
    assert values == [1, 2, 3] and last == 101 and total == 6


def slow_inc(x, delay):
    import time
    time.sleep(delay)
    return x + 1


def test_asyncio_gather_times_out_and_the_futures_go_on(e):
    async def main():
        async with AsyncExecutor(e.address, token=e.token) as ae:
            future = ae.submit(slow_inc, 1, 2.0)
            with pytest.raises(TimeoutError):
                await ae.gather([future], timeout=0.1)
            return await ae.gather([future], timeout=60)
    assert asyncio.run(main()) == [2]


def test_executor_asynchronous_flag_must_be_awaited(e):
    async def main():
        ae = await Executor(e.address, token=e.token, asynchronous=True)
        try:
            return await ae.submit(inc, 1)
        finally:
            await ae.close()
    assert asyncio.run(main()) == 2


def test_run_on_every_worker_and_cluster_info(e):
    pids = e.run(os.getpid)
    assert set(pids) == set(e.ncores()) and len(set(pids.values())) == 2
    assert all(n == 1 for n in e.ncores().values())
    futures = e.map(inc, range(4))
    e.gather(futures)
    who_has = e.who_has(futures)
    assert set(who_has) == {f.key for f in futures}
    held = {key for keys in e.has_what().values() for key in keys}
    assert {f.key for f in futures} <= held
    assert "workers=2" in repr(e) and "threads" in e._repr_html_()


def test_upload_file_makes_a_module_importable_on_workers(e, tmp_path):
    module = tmp_path / "uploaded_helper_module.py"
    module.write_text("def triple(x):\n    return 3 * x\n")
    e.upload_file(module)

    def use(x):
        import uploaded_helper_module
        return uploaded_helper_module.triple(x)
    assert e.submit(use, 5, pure=False).result() == 15


def test_progress_bar_ends_when_done(e):
    futures = e.map(inc, range(20), pure=False)
    out = io.StringIO()
    progress(futures, file=out, interval=0.01)
    assert all(f.done() for f in futures)
    assert "20/20" in out.getvalue()
