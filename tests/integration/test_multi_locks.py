"""dask's MultiLock between real processes: tasks and clients take several locks at once
through the center, a request for many is served in its turn, and the locks of a task whose
worker is killed are free again."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
from dist_client import AsyncExecutor, ClusterError, Lock, MultiLock, Queue, Variable

pytestmark = pytest.mark.timeout(120)


def count_inside(names, counter, hold):
    """Holds ``names`` together for ``hold`` seconds, counting who is inside on ``counter``."""
    with MultiLock(names):
        Queue(counter).put((tuple(names), 1))
        time.sleep(hold)
        Queue(counter).put((tuple(names), -1))
    return True


@pytest.mark.cluster(n_workers=2, nthreads=3)
def test_tasks_holding_overlapping_locks_never_hold_one_together(cluster):
    e = cluster.executor()
    sets = [["a", "b"], ["b", "c"], ["c", "a"], ["a"], ["b"], ["c"]]
    futures = [e.submit(count_inside, names, "inside", 0.1, pure=False) for names in sets]
    assert all(f.result(60) for f in futures)
    queue, holders = Queue("inside"), {"a": 0, "b": 0, "c": 0}
    for _ in range(2 * len(sets)):
        names, step = queue.get(timeout=10)
        for name in names:
            holders[name] += step
            assert holders[name] in (0, 1), f"two held {name} at once"


def test_a_request_for_many_locks_is_served_before_later_requests_for_few(cluster):
    e = cluster.executor()
    first = MultiLock(["x"], client=e)
    assert first.acquire()
    many = MultiLock(["x", "y", "z"], client=e)
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(many.acquire(timeout=60)))
    thread.start()
    # Once the request for three waits, a later one for "y" alone waits behind it, though
    # "y" is free now.
    deadline = time.monotonic() + 30
    few = MultiLock(["y"], client=e)
    while few.acquire(blocking=False):
        few.release()  # (the request for three has not reached the center yet)
        assert time.monotonic() < deadline, "the request for three never arrived"
        time.sleep(0.05)
    assert not few.acquire(timeout=0.2)
    first.release()
    thread.join(60)
    assert outcome == [True] and many.locked()
    assert not few.acquire(blocking=False)
    many.release()
    assert few.acquire(timeout=10)
    few.release()


def test_num_locks_and_the_errors_of_dasks_contract(cluster):
    e = cluster.executor()
    holder = MultiLock(["p"], client=e)
    assert holder.acquire()
    two_of_three = MultiLock(["p", "q", "r"], client=e)
    assert two_of_three.acquire(timeout="5s", num_locks=2)  # q and r are free
    assert not MultiLock(["q"], client=e).acquire(timeout=0.1)
    two_of_three.release()
    with pytest.raises(ValueError, match="not yet acquired"):
        two_of_three.release()
    with pytest.raises(ValueError, match="non-blocking"):
        two_of_three.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="num_locks"):
        two_of_three.acquire(num_locks=4)
    with MultiLock(["q", "r"], client=e) as both:
        assert both.locked()
        with pytest.raises(RuntimeError, match="not re-entrant"):
            both.acquire()
    assert not both.locked()
    assert Lock("p").acquire(timeout=5), "a Lock's names are not a MultiLock's"
    holder.release()


def hold_forever(names, holder):
    MultiLock(names).acquire()
    Variable(holder).set(os.getpid())
    time.sleep(600)


def test_the_locks_of_a_task_whose_worker_is_killed_are_released(cluster):
    e = cluster.executor()
    task = e.submit(hold_forever, ["m", "n"], "m-holder", pure=False)
    pid = Variable("m-holder").get(timeout=60)
    mine = MultiLock(["n", "o"])
    assert not mine.acquire(timeout=0.1)
    os.kill(pid, signal.SIGKILL)
    assert mine.acquire(timeout=60), "the locks died with their holder's worker"
    mine.release()
    del task


def test_a_multi_lock_is_awaitable_with_an_async_executor(cluster):
    async def main():
        async with AsyncExecutor(cluster.address) as e:
            lock = MultiLock(["async-a", "async-b"], client=e)
            async with lock:
                assert lock.locked()
                other = MultiLock(["async-b"], client=e)
                assert not await other.acquire(timeout=0.1)
            assert await other.acquire(timeout=5)
            await other.release()
            return lock.locked()

    assert asyncio.run(main()) is False


def test_an_older_center_without_multi_locks_is_named(processes):
    center = processes.start_center(env={"DIST_PROTOCOL_FEATURES": "coordination"})
    e = processes.executor(center.address)
    with pytest.raises(ClusterError, match="multi-lock"):
        MultiLock(["x"], client=e).acquire()
