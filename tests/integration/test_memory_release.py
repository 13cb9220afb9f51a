"""Results are freed on the workers once no Future, no other client and no waiting task needs
them. Checked twice: the center's count of keys per worker, and the count each worker process
reports of what it holds (its heartbeat, every half second)."""
from __future__ import annotations

import gc
import sys
import time
import weakref

import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30
RELEASE_TIMEOUT = 10  # a few heartbeats


def make_block(i, size=100_000):
    return bytes([i % 256]) * size


def slow_inc(x, delay=0.5):
    time.sleep(delay)
    return x + 1


def inc(x):
    return x + 1


def held(cluster, executor) -> tuple[int, int]:
    """(keys the center knows on workers, keys the worker processes say they hold)."""
    table = cluster.worker_table(executor).values()
    return (sum(row["keys"] for row in table),
            sum(row["metrics"].get("keys", 0) for row in table))


def wait_until_held(cluster, executor, wait_until, expected: tuple[int, int], what: str) -> None:
    wait_until(lambda: held(cluster, executor) == expected, RELEASE_TIMEOUT,
               f"{what}: (center, workers) to hold {expected}, "
               f"holding {held(cluster, executor)}")


def settle(executor) -> None:
    """Wait until the center has handled everything this client sent so far: its messages
    arrive in order, so a computed round trip comes after any release queued before it."""
    assert executor.submit(inc, time.monotonic_ns(), pure=False).result(RESULT_TIMEOUT) > 0


def test_dropped_futures_are_freed_on_the_workers(cluster, executor, wait_until):
    futures = executor.map(make_block, range(10))
    executor.gather(futures, timeout=RESULT_TIMEOUT)
    keys = {f.key for f in futures}
    wait_until_held(cluster, executor, wait_until, (10, 10), "the results to be reported")
    assert set().union(*executor.has_what().values()) == keys
    assert len(cluster.worker_table(executor)) == 2

    del futures
    gc.collect()

    wait_until_held(cluster, executor, wait_until, (0, 0), "the dropped results to be freed")
    assert executor.who_has() == {}
    assert all(not held_keys for held_keys in executor.has_what().values())
    table = cluster.worker_table(executor).values()
    assert all(row["nbytes"] == 0 and row["metrics"]["nbytes"] == 0 for row in table)


def test_a_future_released_explicitly_is_freed_while_others_stay(cluster, executor, wait_until):
    keep, drop = executor.map(make_block, [1, 2])
    executor.gather([keep, drop], timeout=RESULT_TIMEOUT)
    drop.release()
    wait_until_held(cluster, executor, wait_until, (1, 1), "the released result to be freed")
    assert executor.who_has(keep)[keep.key]
    assert keep.result(timeout=RESULT_TIMEOUT) == make_block(1)


def test_intermediate_results_are_freed_once_their_dependents_ran(cluster, executor,
                                                                   wait_until):
    total = executor.submit(sum, [executor.submit(len, executor.submit(make_block, i))
                                  for i in range(5)])
    assert total.result(timeout=RESULT_TIMEOUT) == 5 * 100_000
    gc.collect()
    wait_until_held(cluster, executor, wait_until, (1, 1), "only the final result to be held")
    assert list(executor.who_has()) == [total.key]


def test_a_key_a_waiting_task_needs_outlives_its_future(cluster, executor, wait_until):
    first = executor.submit(slow_inc, 1)
    second = executor.submit(inc, first)
    del first
    gc.collect()
    assert second.result(timeout=RESULT_TIMEOUT) == 3
    wait_until_held(cluster, executor, wait_until, (1, 1), "the consumed input to be freed")


def test_a_key_another_client_holds_stays_until_both_drop_it(cluster, executor, wait_until):
    other = cluster.executor()
    mine, theirs = executor.submit(make_block, 7), other.submit(make_block, 7)
    assert mine.key == theirs.key
    assert mine.result(timeout=RESULT_TIMEOUT) == theirs.result(timeout=RESULT_TIMEOUT)

    del mine
    gc.collect()
    settle(executor)
    assert other.who_has(theirs)[theirs.key], "freed while another client holds it"
    assert theirs.result(timeout=RESULT_TIMEOUT) == make_block(7)

    del theirs
    gc.collect()
    wait_until_held(cluster, executor, wait_until, (0, 0), "the result both dropped to be freed")


def test_closing_a_client_frees_what_it_held(cluster, executor, wait_until):
    leaving = cluster.executor()
    futures = leaving.map(make_block, range(4))
    leaving.gather(futures, timeout=RESULT_TIMEOUT)
    kept = executor.submit(make_block, 99)
    kept.result(timeout=RESULT_TIMEOUT)
    wait_until_held(cluster, executor, wait_until, (5, 5), "every result to be reported")

    leaving.close()

    wait_until_held(cluster, executor, wait_until, (1, 1), "the closed client's results to go")
    assert kept.result(timeout=RESULT_TIMEOUT) == make_block(99)


def fail_with(block):
    raise ValueError(f"no use for {len(block)} bytes")


def test_what_a_frame_that_caught_a_tasks_error_held_is_freed_with_it(cluster, executor,
                                                                      wait_until):
    """The future kept the error it raised, and the error the frames it passed through: the
    caller's frame (with its futures) lived as long as the executor, and their keys with it."""
    def attempt():
        block = executor.submit(make_block, 1, pure=False)
        failing = executor.submit(fail_with, block, pure=False)
        try:
            failing.result(timeout=RESULT_TIMEOUT)
        except ValueError as error:
            assert "100000 bytes" in str(error)
        else:
            raise AssertionError("the task did not fail")

    attempt()
    gc.collect()
    settle(executor)
    wait_until_held(cluster, executor, wait_until, (0, 0), "the block the frame held to be freed")


def test_an_executor_dropped_after_catching_a_tasks_error_is_closed(cluster, wait_until):
    def session() -> weakref.ref:
        dropped = Executor(cluster.address)
        failing = dropped.submit(fail_with, b"x", pure=False)
        try:
            failing.result(timeout=RESULT_TIMEOUT)
        except ValueError:
            pass
        return weakref.ref(dropped)

    dropped = session()
    gc.collect()
    wait_until(lambda: dropped() is None, RELEASE_TIMEOUT, "the dropped executor to be freed")


class BlockingFinalizer:
    """Says it is being finalized (a file), then blocks, as a finalizer waiting on a network
    that does not answer would."""

    def __init__(self, path):
        self.path = path

    def __del__(self):
        with open(self.path, "w"):
            pass
        time.sleep(3600)


def make_blocking_finalizer(path):
    return BlockingFinalizer(path)


@pytest.mark.cluster(n_workers=1, heartbeat_timeout=2.0)
def test_a_freed_value_whose_finalizer_blocks_costs_the_worker_nothing(cluster, executor,
                                                                        wait_until, tmp_path):
    """Its finalizer runs off the worker's event loop: the worker goes on serving and
    sending heartbeats (the center would remove a silent one after 2 s)."""
    finalizing = tmp_path / "finalizing"
    future = executor.submit(make_blocking_finalizer, str(finalizing))
    executor.gather([executor.submit(type, future)], timeout=RESULT_TIMEOUT)  # not fetched here
    del future

    wait_until(finalizing.exists, RELEASE_TIMEOUT, "the value's finalizer to start")
    assert executor.submit(slow_inc, 1, delay=3.0).result(timeout=RESULT_TIMEOUT) == 2
    assert "removing it" not in cluster.center.output(), cluster.center.output()


def faults_of_a_second_burst(mib: int = 24) -> int:
    """Page faults of the calling thread while a task's worth of 2 MiB blocks (``mib`` in all) is
    made and dropped, the same having been made and dropped just before."""
    import resource

    def burst() -> None:
        blocks = [b"x" * (2 << 20) for _ in range(mib // 2)]  # every page written
        del blocks

    burst()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    burst()
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


def test_a_worker_keeps_the_heap_a_task_freed_for_the_next_one(make_cluster):
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, nanny=True, name="heap")
    cluster.workers.append(worker)
    executor = cluster.executor()
    # Tens of megabytes come and go between a worker's tasks (arrays' chunks): given back to
    # the system after each, their pages would be faulted in and zeroed again by the next.
    # (About 6,000 faults a burst when the heap keeps only 8 MiB.)
    faults = executor.submit(faults_of_a_second_burst, pure=False).result(RESULT_TIMEOUT)
    assert faults < 1000


def resident_bytes():
    import os
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def random_block(i, nbytes):
    import numpy
    return numpy.random.default_rng(i).random(nbytes // 8)  # every page written


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc's heap")
def test_released_results_give_their_memory_back_to_the_system(make_cluster, wait_until):
    # Results under the allocator's mmap threshold live on its heap, which it would keep
    # for reuse: the worker would stay as large as when it held them, as dask's do not.
    mb = 10**6
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", "400MB",
                                            nanny=True, name="trim")
    cluster.workers.append(worker)
    executor = cluster.executor()
    cluster.wait_for_workers(executor, 1)
    executor.submit(random_block, 0, 1000).result(RESULT_TIMEOUT)  # numpy imported
    before = executor.run(resident_bytes)[worker.address]
    futures = [executor.submit(random_block, i, 20 * mb) for i in range(8)]  # under the target
    executor.gather(futures, timeout=RESULT_TIMEOUT)
    assert executor.run(resident_bytes)[worker.address] > before + 140 * mb
    del futures
    wait_until(lambda: executor.run(resident_bytes)[worker.address] < before + 40 * mb, 10,
               "the worker to give the released results' memory back")
