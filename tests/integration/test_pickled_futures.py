"""Futures hidden inside other objects (a dataclass here) travel pickled, on real processes:
a task unpickles them as futures of its worker's executor and reads them; the submitting
client may drop its own at once; a future is refused on a cluster that did not make it: by
the executor it is given to, and where it is unpickled."""
from __future__ import annotations

import dataclasses
import gc
import os
import pickle
import time

import pytest
from dist_client import get_executor

pytestmark = pytest.mark.timeout(120)


@dataclasses.dataclass
class Holder:
    futures: list
    label: str


def square(x):
    return x * x


def read_held(holder):
    """The values behind the futures the holder carries, read inside the task."""
    same_executor = all(f.executor is get_executor() for f in holder.futures)
    return holder.label, [f.result(timeout=30) for f in holder.futures], same_executor


def reader_of(future):
    return lambda: future.result(timeout=30) + 1


def wait_for_file(path):
    while not os.path.exists(path):  # the test makes it: an event from another process
        time.sleep(0.01)
    return path


@pytest.mark.cluster(n_workers=2, nthreads=2)
def test_a_task_reads_the_futures_a_dataclass_carries(cluster):
    executor = cluster.executor()
    futures = executor.map(square, range(4))
    executor.gather(futures)
    read = executor.submit(read_held, Holder(futures, "squares"))
    assert read.result(timeout=60) == ("squares", [0, 1, 4, 9], True)


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_the_value_is_there_though_the_client_dropped_its_future_after_submit(cluster,
                                                                             tmp_path):
    executor = cluster.executor()
    data = executor.submit(square, 7, pure=False)
    data.result(timeout=30)
    go = tmp_path / "go"
    # The only thread is busy until the file exists: the next task unpickles its
    # argument after the client has let go of its own future.
    busy = executor.submit(wait_for_file, str(go))
    read = executor.submit(read_held, Holder([data], "dropped"))
    del data
    gc.collect()
    executor.scheduler_info()  # a round trip: any release the client queued reached the center
    go.write_text("go")
    assert busy.result(timeout=30) == str(go)
    assert read.result(timeout=60) == ("dropped", [49], True)


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_a_closure_over_a_future_reads_it_though_the_caller_dropped_both(cluster, tmp_path):
    executor = cluster.executor()
    data = executor.submit(square, 8, pure=False)
    data.result(timeout=30)
    go = tmp_path / "go"
    busy = executor.submit(wait_for_file, str(go))
    read = executor.submit(reader_of(data))  # the closure is dropped once submitted
    del data
    gc.collect()
    executor.scheduler_info()
    go.write_text("go")
    assert busy.result(timeout=30) == str(go)
    assert read.result(timeout=60) == 65


@pytest.mark.cluster(n_workers=2, nthreads=2)
def test_a_pandas_series_of_futures_is_read_in_a_task(cluster):
    pd = pytest.importorskip("pandas")
    executor = cluster.executor()
    futures = executor.map(square, range(3))
    executor.gather(futures)
    series = pd.Series(futures, index=["a", "b", "c"], dtype=object)
    read = executor.submit(lambda s: s.map(lambda f: f.result(timeout=30)).to_dict(), series)
    assert read.result(timeout=60) == {"a": 0, "b": 1, "c": 4}


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_a_future_unpickled_in_a_client_process_binds_to_an_executor_of_its_cluster(cluster):
    executor = cluster.executor()
    future = executor.submit(square, 3, pure=False)
    future.result(timeout=30)
    data = pickle.dumps(Holder([future], "local"))
    again = pickle.loads(data)
    assert again.futures[0].executor is executor
    assert again.futures[0].result(timeout=30) == 9
    other = cluster.executor()  # another client of the same cluster, the default now
    theirs = pickle.loads(data)
    assert theirs.futures[0].executor is other
    del future, again
    gc.collect()
    executor.scheduler_info()  # the first client's release reached the center
    assert theirs.futures[0].result(timeout=30) == 9  # held by the other client since


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_a_future_of_another_cluster_is_refused_with_a_clear_error(cluster, processes):
    first = cluster.executor()
    future = first.submit(square, 5, pure=False)
    future.result(timeout=30)
    data = pickle.dumps(Holder([future], "elsewhere"))
    center = processes.start_center()
    processes.start_worker(center.address)
    second = processes.executor(center.address)
    second.wait_for_workers(1)
    with pytest.raises(ValueError, match=f"created by another client.*center at "
                                         f"{first.address}"):
        second.submit(read_held, Holder([future], "elsewhere"))
    first.close()
    with pytest.raises(ValueError, match=f"{future.key} belongs to the cluster whose center "
                                         f"is at {first.address}.*{second.address}"):
        pickle.loads(data)


def read_or_echo(value):
    return read_held(value) if isinstance(value, Holder) else value


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_a_function_run_on_the_event_loop_unpickles_its_futures_on_a_thread(cluster):
    executor = cluster.executor()
    # Quick runs make the worker run the function on its event loop...
    assert executor.gather(executor.map(read_or_echo, range(20), pure=False)) == list(range(20))
    # ...which must not block connecting to the cluster for the futures in its argument.
    future = executor.submit(square, 6)
    future.result(timeout=30)
    read = executor.submit(read_or_echo, Holder([future], "from the loop"))
    assert read.result(timeout=60) == ("from the loop", [36], True)
