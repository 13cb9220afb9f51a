"""``performance_report``: code written for dask writes one self-contained HTML page of what
ran inside the block, on the default executor, sync and async, also when the block raises."""
from __future__ import annotations

import asyncio
import gzip
import re

import pytest
from dist_client import Executor, performance_report

da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.timeout(120)


def inc(x):
    return x + 1


def summary_tasks(page: str) -> int:
    """The task count of the page's summary table (duration, tasks, ...)."""
    summary = page.split("<h2>Summary</h2>", 1)[1]
    return int(re.findall(r"<td>([^<]*)</td>", summary)[1])


def test_a_map_and_a_dask_array_compute_are_in_the_report(executor, tmp_path):
    target = tmp_path / "dask-report.html"
    with performance_report(filename=str(target)):
        assert executor.gather(executor.map(inc, range(10))) == list(range(1, 11))
        total = da.ones((20,), chunks=5).sum().compute()  # as a dask user writes it
    assert total == 20
    page = target.read_text()
    shown = page.split("<h2>Code</h2>", 1)[0]  # (the code below is this file's)
    assert "<script" not in shown and "http" not in shown.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    # 10 inc, 4 ones, 4 partial sums and the aggregate (dask may fuse some: at least 11).
    assert summary_tasks(page) >= 11
    assert "<td>inc</td><td>10</td>" in page
    assert re.search(r"<td>(ones|sum)[^<]*</td>", page)
    assert "<svg" in page and page.count("<rect") >= 11
    # The calling code: this test's source.
    assert "def test_a_map_and_a_dask_array_compute_are_in_the_report" in page


def test_written_when_the_block_raises_and_when_nothing_ran(executor, tmp_path):
    failed, idle = tmp_path / "failed.html", tmp_path / "idle.html.gz"
    with pytest.raises(KeyError, match="mine"), performance_report(filename=failed):
        executor.submit(inc, 1, pure=False).result(60)
        raise KeyError("mine")
    assert summary_tasks(failed.read_text()) == 1
    with performance_report(str(idle)):  # the default executor; compressed as dask's fsspec
        pass
    page = gzip.decompress(idle.read_bytes()).decode()
    assert summary_tasks(page) == 0 and "No task ran." in page
    with pytest.raises(ValueError, match="mode must be"):
        performance_report(mode="bokeh")


def test_async_form(cluster, tmp_path):
    target = tmp_path / "report.html"

    async def main() -> None:
        async with Executor(cluster.address, asynchronous=True) as e:
            async with performance_report(filename=str(target)):
                assert await e.gather(e.map(inc, range(3))) == [1, 2, 3]

    asyncio.run(asyncio.wait_for(main(), 60))
    page = target.read_text()
    assert summary_tasks(page) == 3 and "<td>inc</td><td>3</td>" in page
    assert "async def main" in page


def test_runs_past_what_the_center_keeps_are_counted(executor, tmp_path):
    target = tmp_path / "long.html"
    with performance_report(filename=target):
        executor.gather(executor.map(inc, range(10_000, 15_200)))
    page = target.read_text()  # the center keeps its newest 5000 runs
    assert summary_tasks(page) == 5000
    assert "200 earlier runs of the block are not in this report" in page
