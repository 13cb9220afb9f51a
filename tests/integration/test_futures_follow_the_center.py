"""Futures tell the truth about their keys, against real processes: a result lost with its
worker reads ``pending`` while it is computed again, scattered data lost reads ``lost``, and
``gather(errors="skip")`` skips what fails meanwhile, in the blocking and the async API."""
from __future__ import annotations

import asyncio
import os
import time

import pytest
from dist_client import AsyncExecutor, LostDataError

pytestmark = pytest.mark.timeout(90)
RESULT_TIMEOUT = 30


def slow_inc(x, delay=0.0):
    time.sleep(delay)
    return x + 1


def once_then_fail(marker, x):
    """Succeeds the first time (with a value too big to ride with the center's notice, so a
    gather fetches it from the worker); its recomputation fails."""
    if os.path.exists(marker):
        raise RuntimeError(f"recomputing {x} failed")
    open(marker, "w").close()
    return bytes(500_000)


def _holder(cluster, executor, future):
    [address] = executor.who_has([future])[future.key]
    return next(w for w in cluster.workers if w.address == address)


def test_a_result_lost_with_its_worker_reads_pending_while_recomputed(cluster, wait_until):
    e = cluster.executor()
    future = e.submit(slow_inc, 1, 1.5)
    assert future.result(RESULT_TIMEOUT) == 2
    _holder(cluster, e, future).kill()
    wait_until(lambda: future.status == "pending", 10, "the future to read pending")
    assert future.result(RESULT_TIMEOUT) == 2
    assert future.status == "finished"
    assert e.who_has([future])[future.key]  # on the surviving worker now


def test_scattered_data_lost_with_its_worker_reads_lost(cluster, wait_until):
    e = cluster.executor()
    [data] = e.scatter([list(range(1000))])
    _holder(cluster, e, data).kill()
    wait_until(lambda: data.status == "lost", 10, "the scattered future to read lost")
    with pytest.raises(LostDataError, match="lost"):
        data.result(1)


def test_gather_skips_a_key_whose_recomputation_fails(cluster, wait_until, tmp_path):
    e = cluster.executor()
    bad = e.submit(once_then_fail, str(tmp_path / "ran"), 7)
    good = e.submit(slow_inc, 1)
    assert e.gather([bad, good], timeout=RESULT_TIMEOUT) == [bytes(500_000), 2]
    if _holder(cluster, e, good).address == _holder(cluster, e, bad).address:
        good = e.submit(slow_inc, 1, pure=False, workers=[
            w.address for w in cluster.workers if w.address != _holder(cluster, e, bad).address])
        good.result(RESULT_TIMEOUT)
    _holder(cluster, e, bad).kill()
    # Gathered at once: the fetch from the dead worker fails while the center recomputes
    # ``bad``, and the recomputation fails; then again once the status says it is pending.
    assert e.gather([bad, good], errors="skip", timeout=RESULT_TIMEOUT) == [2]
    assert e.gather((bad, good), errors="skip", timeout=RESULT_TIMEOUT) == (2,)

    async def gather_async():
        async with AsyncExecutor(cluster.address) as ae:
            mine = ae.submit(once_then_fail, str(tmp_path / "ran"), 7)  # the same key
            other = ae.submit(slow_inc, 5)
            return await ae.gather({"bad": mine, "other": other}, errors="skip")

    assert asyncio.run(gather_async()) == {"other": 6}
    assert bad.status == "error"
    with pytest.raises(RuntimeError, match="recomputing 7 failed"):
        e.gather([bad, good])
