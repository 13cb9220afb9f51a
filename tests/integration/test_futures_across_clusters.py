"""A future given to an executor of another cluster is refused at the call, naming the cause,
as dask refuses another client's futures; a value holding futures of its own cluster (a
persisted dask collection, a list of futures) can be scattered, its futures kept as futures
on the worker, as dask's workers keep them."""
from __future__ import annotations

import gc
import pickle

import pytest
from dist_client import Future

pytestmark = pytest.mark.timeout(120)

ANOTHER_CLIENT = "Inputs contain futures that were created by another client"


def inc(x):
    return x + 1


def total(values):
    return sum(values)


def values_of(held):
    return [f.result(timeout=30) if isinstance(f, Future) else f for f in held]


@pytest.fixture
def two_clusters(cluster, processes):
    first = cluster.executor()
    center = processes.start_center()
    processes.start_worker(center.address)
    second = processes.executor(center.address)
    second.wait_for_workers(1)
    return first, second


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_submit_map_gather_and_scatter_refuse_futures_of_another_cluster(two_clusters):
    first, second = two_clusters
    theirs = first.submit(inc, 1)
    assert theirs.result(timeout=30) == 2
    where = f"center at {first.address}"
    with pytest.raises(ValueError, match=f"{ANOTHER_CLIENT}.*{where}.*{theirs.key}"):
        second.submit(inc, theirs)
    with pytest.raises(ValueError, match=ANOTHER_CLIENT):
        second.submit(total, [1, {"x": theirs}])
    with pytest.raises(ValueError, match=ANOTHER_CLIENT):
        second.map(inc, [theirs])
    with pytest.raises(ValueError, match=ANOTHER_CLIENT):
        second.submit(lambda: theirs.result())  # a closure over it
    with pytest.raises(ValueError, match=ANOTHER_CLIENT):
        second.gather([theirs])
    with pytest.raises(ValueError, match=ANOTHER_CLIENT):
        second.gather(theirs)
    with pytest.raises(ValueError, match=ANOTHER_CLIENT):
        second.scatter([[theirs, 1]])
    # Nothing of the refused calls stayed behind: the second cluster works on.
    assert second.submit(inc, 10).result(timeout=30) == 11
    assert second.gather(second.scatter([5])) == [5]


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_futures_of_another_executor_on_the_same_cluster_are_taken(cluster):
    first, second = cluster.executor(), cluster.executor()
    # Each passed on at once: the second client's task must not reach the center before the
    # first client's, which travels on another connection.
    theirs, ours = [], []
    for i in range(20):
        theirs.append(first.submit(inc, i, pure=False))
        ours.append(second.submit(inc, theirs[-1]))
    assert second.gather(ours, timeout=60) == list(range(2, 22))
    assert second.gather(theirs) == list(range(1, 21))


@pytest.mark.cluster(n_workers=2, nthreads=1)
def test_a_value_holding_futures_is_scattered_its_futures_kept(cluster):
    executor = cluster.executor()
    futures = executor.map(inc, range(3))
    (held,) = executor.scatter([[*futures, "end"]])
    back = held.result(timeout=30)
    assert [f.key for f in back[:3]] == [f.key for f in futures] and back[3] == "end"
    assert all(f.executor is executor for f in back[:3])
    del back
    assert executor.submit(values_of, held).result(timeout=60) == [1, 2, 3, "end"]
    del futures
    gc.collect()
    executor.scheduler_info()  # the client's releases reached the center
    # The stored value holds its futures on the worker: their keys stay.
    assert executor.submit(values_of, held).result(timeout=60) == [1, 2, 3, "end"]
    (everywhere,) = executor.scatter([[held]], broadcast=True)
    assert sorted(map(len, executor.who_has([everywhere]).values())) == [2]
    assert pickle.loads(pickle.dumps(everywhere)).result(timeout=30)[0].key == held.key


def compute_inside(frame):
    return int(frame.x.sum().compute())


@pytest.mark.cluster(n_workers=2, nthreads=2)
def test_a_persisted_dask_dataframe_is_scattered_and_computed_in_a_task(cluster):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    executor = cluster.executor()
    frame = executor.persist(dd.from_pandas(pd.DataFrame({"x": range(10)}), npartitions=2))
    (scattered,) = executor.scatter([frame])
    assert executor.submit(compute_inside, scattered).result(timeout=60) == 45
