"""Nonsense numbers in a call are the caller's error, not the connection's.

The center refuses NaN or negative resources, retries, ``replicate(n=-5)`` and
``restart(timeout=-1)`` with ``invalid-message`` and closes the connection that sent them. The
Python client used to pass them on: one typo cost the executor its connection, failed every
pending future with ``CenterLostError`` -- and ``restart(timeout=-1)`` cancelled every future
before it was refused. Now the call raises, naming the argument, and nothing else happens.
"""
from __future__ import annotations

import asyncio
import os
import time

import pytest
from dist_client import AsyncExecutor

pytestmark = pytest.mark.timeout(120)
RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def blocked(path, x):
    while not os.path.exists(path):
        time.sleep(0.01)
    return x


NONSENSE = [
    ("submit, NaN resources", ValueError, r"resources\['GPU'\].*finite",
     lambda e: e.submit(inc, 1, resources={"GPU": float("nan")})),
    ("submit, negative resources", ValueError, r"resources\['GPU'\].*at least 0",
     lambda e: e.submit(inc, 1, resources={"GPU": -1})),
    ("map, infinite resources", ValueError, r"resources\['GPU'\].*finite",
     lambda e: e.map(inc, [1, 2], resources={"GPU": float("inf")})),
    ("submit, resources that are not numbers", TypeError, r"resources\['GPU'\].*number",
     lambda e: e.submit(inc, 1, resources={"GPU": "one"})),
    ("submit, negative retries", ValueError, "retries must be at least 0",
     lambda e: e.submit(inc, 1, retries=-1)),
    ("submit, NaN priority", ValueError, "priority must be a finite number",
     lambda e: e.submit(inc, 1, priority=float("nan"))),
    ("submit, a worker that is not a string", TypeError, "workers: 7",
     lambda e: e.submit(inc, 1, workers=[7])),
    ("replicate n=-5", ValueError, "n must be at least 1",
     lambda e: e.replicate([e.submit(inc, 0)], n=-5)),
    ("restart timeout=-1", ValueError, "timeout must be at least 0",
     lambda e: e.restart(timeout=-1)),
]


def test_nonsense_numbers_raise_in_the_call_and_lose_nothing(cluster, tmp_path):
    e = cluster.executor()
    release = tmp_path / "release"
    pending = e.submit(blocked, str(release), 5)
    done = e.submit(inc, 1)
    assert done.result(RESULT_TIMEOUT) == 2
    for what, error, message, call in NONSENSE:
        with pytest.raises(error, match=message):
            call(e)
        assert e.status == "running", what
        assert pending.status == "pending", what  # not cancelled, not failed
    release.touch()
    assert pending.result(RESULT_TIMEOUT) == 5
    assert done.result(RESULT_TIMEOUT) == 2
    assert e.submit(inc, 10, resources=None, retries=1).result(RESULT_TIMEOUT) == 11


def test_the_async_executor_refuses_them_too(cluster):
    async def main():
        async with AsyncExecutor(cluster.address) as ae:
            kept = ae.submit(inc, 1)
            assert await kept == 2
            with pytest.raises(ValueError, match="timeout must be at least 0"):
                await ae.restart(timeout=-1)
            with pytest.raises(ValueError, match="n must be at least 1"):
                await ae.replicate([kept], n=0)
            with pytest.raises(ValueError, match="resources"):
                ae.submit(inc, 2, resources={"GPU": float("nan")})
            assert kept.status == "finished"
            return await ae.submit(inc, 3)
    assert asyncio.run(main()) == 4
