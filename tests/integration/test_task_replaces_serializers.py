"""A task that replaces pickle's or msgpack's functions in its worker's process (as a library
that wraps pickle may) changes its own calls only; the worker goes on serving.

Before, the worker looked these up at each call: after ``pickle.loads`` was replaced every
later task failed to load ("the task's function is a str"), and after ``msgpack.unpackb``
was the worker could no longer speak to its center and blamed the center, for good.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def replace_serializers():
    import pickle

    import msgpack

    def broken(*args, **kwargs):
        return b"\xc1"  # (never valid msgpack, nor a pickle)

    pickle.dumps = pickle.loads = msgpack.packb = msgpack.unpackb = broken
    return "replaced"


def arange(n):
    import numpy as np
    return np.arange(n)


def total(array):
    return int(array.sum())


@pytest.mark.cluster(n_workers=2, nthreads=1)
def test_later_tasks_transfers_and_gathers_are_right(cluster, executor):
    workers = sorted(executor.scheduler_info()["workers"])
    assert executor.run(replace_serializers) == {w: "replaced" for w in workers}
    assert executor.gather(executor.map(lambda x: x + 1, range(20)),
                           timeout=RESULT_TIMEOUT) == list(range(1, 21))
    # made on one worker, summed on the other: a transfer between the two
    array = executor.submit(arange, 100_000, workers=[workers[0]])
    summed = executor.submit(total, array, workers=[workers[1]])
    assert summed.result(timeout=RESULT_TIMEOUT) == sum(range(100_000))
    assert list(array.result(timeout=RESULT_TIMEOUT)[:3]) == [0, 1, 2]
    doubled = executor.submit(lambda x: 2 * x, executor.scatter(21))
    assert doubled.result(timeout=RESULT_TIMEOUT) == 42
    # the same worker processes, still registered
    cluster.wait_for_workers(executor, 2)
    assert sorted(executor.scheduler_info()["workers"]) == workers
