"""A large keyword argument every task of a ``map`` shares reaches the cluster once, as
dask's ``map`` sends it as a data node of the graph: pickled into each task, it went to the
center and sat in its memory once per task (dist_client.held_keywords)."""
from __future__ import annotations

import os
import warnings

import pytest

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                 reason="reads the center's peak memory from /proc")]

RESULT_TIMEOUT = 60
MB = 2**20


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0]) * 1024


def plus_size(i, table):
    return i + len(table)


def test_a_large_keyword_argument_of_a_map_reaches_the_center_once(make_cluster):
    cluster = make_cluster(n_workers=2, nthreads=2)
    e = cluster.executor()
    table = bytes(8 * MB)
    assert e.submit(plus_size, 0, b"").result(timeout=RESULT_TIMEOUT) == 0
    before = peak_rss(cluster.center.pid)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        futures = e.map(plus_size, range(30), table=table)
    assert e.gather(futures, timeout=RESULT_TIMEOUT) == [i + 8 * MB for i in range(30)]

    grown = peak_rss(cluster.center.pid) - before
    assert grown < 4 * len(table), f"the center's peak memory grew by {grown / MB:.0f} MiB"
    assert not [w for w in warned if "sent with every task" in str(w.message)]
    # The same call again names the same tasks: keys come from the value, as before.
    again = e.map(plus_size, range(30), table=table)
    assert [f.key for f in again] == [f.key for f in futures]
    assert e.gather(again, timeout=RESULT_TIMEOUT) == [i + 8 * MB for i in range(30)]
