"""``Executor.retire_workers``, as dask's: a worker leaves gracefully, its data kept."""
from __future__ import annotations

import pytest
from dist_client import wait


def numbers(n):
    return list(range(n))


def test_a_retired_worker_leaves_and_its_data_stays(make_cluster, wait_until):
    cluster = make_cluster(n_workers=2)
    e = cluster.executor()
    cluster.wait_for_workers(e, 2)
    leaving, staying = sorted(e.nthreads())
    held = e.submit(numbers, 1000, workers=[leaving], pure=False)
    wait([held])
    assert e.who_has(held)[held.key] == [leaving]

    retired = e.retire_workers([leaving])
    assert len(retired) == 1
    assert list(e.nthreads()) == [staying]
    assert e.who_has(held)[held.key] == [staying]
    assert held.result(timeout=30) == list(range(1000))
    process = next(w for w in cluster.workers if w.address == leaving)
    wait_until(lambda: process.popen.poll() is not None, 30, "the retired worker to exit")
    assert e.submit(numbers, 3, pure=False).result(timeout=30) == [0, 1, 2]


def test_retiring_an_unknown_worker_warns_and_retires_nothing(make_cluster):
    cluster = make_cluster(n_workers=1)
    e = cluster.executor()
    cluster.wait_for_workers(e, 1)
    with pytest.warns(UserWarning, match="could not retire 127.0.0.1:1"):
        assert e.retire_workers(["127.0.0.1:1"]) == {}
    assert len(e.nthreads()) == 1


def test_with_no_workers_named_the_center_picks_those_the_work_does_not_need(make_cluster):
    cluster = make_cluster(n_workers=3)
    e = cluster.executor()
    cluster.wait_for_workers(e, 3)
    held = e.submit(numbers, 100, pure=False)
    wait([held])
    retired = e.retire_workers()
    assert 1 <= len(retired) <= 2  # idle: not three workers' worth of work; one keeps the data
    assert len(e.nthreads()) == 3 - len(retired)
    assert held.result(timeout=30) == list(range(100))
