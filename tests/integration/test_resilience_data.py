"""Data lost with a worker, and workers short of memory.

Scattered data has no lineage: when its only worker dies its futures become ``lost`` with a
clear error, unless it was broadcast or replicated. A worker over its ``--memory-limit``
pauses (80%) or is restarted by its nanny (95%), and the tasks it was running go elsewhere.
"""
from __future__ import annotations

import time

import pytest
from dist_client import KilledWorker, LostDataError

pytestmark = pytest.mark.timeout(90)
pytest.importorskip("numpy")

RESULT_TIMEOUT = 30
MiB = 2**20


def inc(x):
    return x + 1


def slow_inc(x, delay=0.05):
    time.sleep(delay)
    return x + 1


def allocate(nbytes):
    """A value that really occupies ``nbytes`` (every page written) and is serialized without
    a copy (an out-of-band buffer), so holding it costs the worker ``nbytes``."""
    import numpy
    return numpy.ones(nbytes, dtype=numpy.uint8)


def hold_memory(nbytes, seconds):
    buffer = allocate(nbytes)
    time.sleep(seconds)
    return len(buffer)


# -- scattered data -------------------------------------------------------------------------------
def test_scattered_data_lost_with_its_worker_is_lost_with_a_clear_error(cluster, executor,
                                                                       wait_until):
    doomed, survivor = cluster.workers
    data = executor.scatter([10, 20, 30], workers=[doomed.address])
    kept = executor.scatter([40], workers=[survivor.address])
    dependent = executor.submit(inc, data[0])
    assert dependent.result(timeout=RESULT_TIMEOUT) == 11
    del dependent  # released: nothing computed from the data is wanted any more
    doomed.kill_worker_process()
    wait_until(lambda: all(f.status == "lost" for f in data), 10, "the scattered futures lost")
    for future in data:
        with pytest.raises(LostDataError) as info:
            future.result(timeout=RESULT_TIMEOUT)
        message = str(info.value)
        assert future.key in message and doomed.address in message, message
    assert executor.gather(kept, timeout=RESULT_TIMEOUT) == [40]
    # A task on lost data fails the same way instead of waiting for it for ever.
    with pytest.raises(LostDataError, match=data[1].key):
        executor.submit(inc, data[1]).result(timeout=RESULT_TIMEOUT)
    # Scattering the value again brings the key back.
    again = executor.scatter([10])
    assert again[0].key == data[0].key and again[0].result(timeout=RESULT_TIMEOUT) == 10
    assert executor.submit(inc, again[0]).result(timeout=RESULT_TIMEOUT) == 11


def test_a_task_waiting_on_scattered_data_is_lost_with_it(cluster, executor, wait_until):
    doomed, _ = cluster.workers
    [data] = executor.scatter([1], workers=[doomed.address])
    blocker = executor.submit(slow_inc, 0, 2.0, workers=[doomed.name], pure=False)
    waiting = executor.submit(inc, data, workers=[doomed.name])  # queued behind the blocker
    doomed.kill_worker_process()
    with pytest.raises(LostDataError, match=data.key):
        waiting.result(timeout=RESULT_TIMEOUT)
    assert waiting.status == "lost"
    assert blocker.status == "pending"  # its restriction holds: no worker may run it now


@pytest.mark.parametrize("how", ["broadcast", "replicate"])
def test_broadcast_or_replicated_data_survives_the_loss_of_a_worker(cluster, executor,
                                                                   wait_until, how):
    doomed, survivor = cluster.workers
    if how == "broadcast":
        data = executor.scatter([1, 2, 3], broadcast=True)
    else:
        data = executor.scatter([1, 2, 3], workers=[doomed.address])
        executor.replicate(data, n=2)
    both = sorted([doomed.address, survivor.address])
    # The workers report the copies they received to the center on their own.
    wait_until(lambda: all(sorted(h) == both for h in executor.who_has(data).values()), 10,
               "the center to know both copies")
    doomed.kill_worker_process()
    cluster.wait_for_workers(executor, 1)
    assert all(h == [survivor.address] for h in executor.who_has(data).values())
    assert [f.status for f in data] == ["finished"] * 3
    assert executor.gather(data, timeout=RESULT_TIMEOUT) == [1, 2, 3]
    assert executor.gather(executor.map(inc, data), timeout=RESULT_TIMEOUT) == [2, 3, 4]


# -- memory limits --------------------------------------------------------------------------------
def memory_of(cluster, executor, worker) -> int:
    return cluster.worker_table(executor)[worker.address]["metrics"].get("memory", 0)


def test_a_worker_above_its_memory_limit_restarts_and_its_tasks_go_elsewhere(make_cluster,
                                                                          wait_until):
    limit = 300 * MiB
    cluster = make_cluster(n_workers=1)
    tight = cluster.processes.start_worker(cluster.address, "--memory-limit", str(limit),
                                           name="tight", nanny=True, nthreads=2)
    cluster.workers.append(tight)
    executor = cluster.executor()
    cluster.wait_for_workers(executor, 2)
    neighbour = executor.submit(slow_inc, 1, 3.0, workers=["tight"], allow_other_workers=True)
    time.sleep(0.3)
    hog = executor.submit(hold_memory, limit, 5.0, workers=["tight"])
    assert neighbour.result(timeout=RESULT_TIMEOUT) == 2  # finished on the other worker
    with pytest.raises(KilledWorker, match=hog.key):
        hog.result(timeout=RESULT_TIMEOUT)
    tight.wait_registered(nth=4)  # started, then restarted after each of the hog's 3 runs
    assert "worker process exited" not in tight.output()  # code 75: restarted at once
    cluster.wait_for_workers(executor, 2)
    assert executor.submit(slow_inc, 5, workers=["tight"]).result(timeout=RESULT_TIMEOUT) == 6
