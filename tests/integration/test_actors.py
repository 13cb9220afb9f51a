"""Actors on real processes: an object on one worker, its methods called straight from clients,
tasks and other actors; its worker's death; restarts; async methods; bad calls."""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading

import pytest
from concurrent.futures import wait

from dist_client import Actor, ActorFuture, ActorLost

pytestmark = pytest.mark.timeout(120)


class Counter:
    def __init__(self, start=0):
        self.n = start
        self.calls = []

    def increment(self, by=1):
        self.n += by
        return self.n

    def record(self, caller, i):
        self.calls.append((caller, i))

    def recorded(self):
        return list(self.calls)

    def pid(self):
        return os.getpid()

    def fail(self):
        raise ValueError("this call fails")


class Gathering:
    """An async actor: ``arrive(n)`` returns once ``n`` calls are in progress at once."""

    def __init__(self):
        self.arrived = 0
        self.everyone = None

    async def arrive(self, n):
        if self.everyone is None:
            self.everyone = asyncio.Event()
        self.arrived += 1
        if self.arrived >= n:
            self.everyone.set()
        await asyncio.wait_for(self.everyone.wait(), 60)
        return self.arrived


class Forwarder:
    def __init__(self, target):
        self.target = target

    def bump(self, by):
        return self.target.increment(by).result()


def bump_many(counter, times):
    for _ in range(times):
        counter.increment().result()
    return times


def test_a_counter_takes_calls_from_many_threads_and_tasks(cluster):
    e = cluster.executor()
    future = e.submit(Counter, 10, actor=True)
    counter = future.result(60)
    assert isinstance(counter, Actor) and counter.n == 10
    assert future.type == "Counter"

    threads = [threading.Thread(target=bump_many, args=(counter, 50)) for _ in range(4)]
    for thread in threads:
        thread.start()
    tasks = [e.submit(bump_many, future, 25, pure=False) for _ in range(2)]  # the future...
    tasks += [e.submit(bump_many, counter, 25, pure=False) for _ in range(2)]  # ...or handle
    for thread in threads:
        thread.join(60)
    assert [t.result(60) for t in tasks] == [25] * 4
    assert counter.n == 10 + 4 * 50 + 4 * 25
    assert counter.address in e.who_has(future)[future.key]


def test_calls_from_one_caller_run_in_the_order_they_were_made(cluster):
    e = cluster.executor()
    where = sorted(e.ncores())[-1]
    log = e.submit(Counter, actor=True, workers=[where]).result(60)
    assert log.address == where  # placed as a task would be
    calls = [log.record("a", i) for i in range(300)]  # not waited for one by one
    wait(calls)  # concurrent.futures' wait takes ActorFutures
    assert log.recorded().result(60) == [("a", i) for i in range(300)]


def test_async_methods_run_concurrently_on_the_workers_loop(cluster):
    e = cluster.executor()
    gathering = e.submit(Gathering, actor=True).result(60)
    # Each call returns only once all five are in progress together: run one at a time,
    # they would wait for ever.
    calls = [gathering.arrive(5) for _ in range(5)]
    assert [c.result(90) for c in calls] == [5] * 5


def test_actor_futures_can_be_awaited(cluster):
    e = cluster.executor()
    counter = e.submit(Counter, actor=True).result(60)

    async def main():
        first = counter.increment(2)
        assert isinstance(first, ActorFuture)
        return await first, await counter.increment(3), await counter.n

    assert asyncio.run(main()) == (2, 5, 5)


def test_actor_futures_take_timeouts_as_dask_writes_them(cluster):
    e = cluster.executor()
    gathering = e.submit(Gathering, actor=True).result(60)
    waiting = gathering.arrive(2)  # returns once a second call arrives
    with pytest.raises(TimeoutError):
        waiting.result(timeout="10ms")
    with pytest.raises(TimeoutError):
        waiting.exception(timeout="10 ms")
    assert gathering.arrive(2).result("60s") == 2
    assert waiting.result(timeout="60s") == 2


def test_handles_reach_other_actors(cluster):
    e = cluster.executor()
    counter = e.submit(Counter, actor=True)
    forwarder = e.submit(Forwarder, counter, actor=True).result(60)
    assert forwarder.bump(7).result(60) == 7
    assert counter.result().n == 7


def test_bad_calls_raise_clear_errors_and_the_actor_goes_on(cluster):
    e = cluster.executor()
    counter = e.submit(Counter, actor=True).result(60)
    with pytest.raises(AttributeError, match="missing"):
        counter.missing  # noqa: B018 -- reading it is the call
    with pytest.raises(ValueError, match="this call fails"):
        counter.fail().result(60)
    with pytest.raises(Exception, match="cannot pickle the arguments of Counter.increment"):
        counter.increment(threading.Lock())
    assert counter.increment().result(60) == 1


def test_a_constructor_that_fails_fails_the_actors_future(cluster):
    e = cluster.executor()
    with pytest.raises(TypeError):
        e.submit(Counter, 1, 2, 3, actor=True).result(60)


def test_the_actor_goes_when_nothing_refers_to_it(cluster, wait_until):
    e = cluster.executor()
    future = e.submit(Counter, actor=True)
    counter = future.result(60)
    assert counter.increment().result(60) == 1
    # A handle made by hand holds no future: it does not keep the actor alive.
    stale = Actor(counter.key, counter.address, "Counter", ("increment",))
    del future, counter
    gc.collect()
    lost = wait_until(lambda: isinstance(stale.increment().exception(30), ActorLost), 30,
                      "the worker to drop the released actor")
    assert lost
    with pytest.raises(ActorLost, match="released"):
        stale.increment().result(30)


def test_an_actor_whose_worker_dies_is_lost_for_in_flight_and_later_calls(cluster):
    e = cluster.executor()
    future = e.submit(Counter, actor=True)
    counter = future.result(60)
    os.kill(counter.pid().result(60), signal.SIGKILL)
    with pytest.raises(ActorLost):
        counter.increment().result(60)
    with pytest.raises(ActorLost):
        counter.increment().result(60)
    with pytest.raises(ActorLost, match="ActorLost: the actor"):
        future.result(60)


def test_an_actor_with_max_restarts_is_made_again_elsewhere_without_its_state(cluster):
    e = cluster.executor()
    future = e.submit(Counter, 100, actor=True, max_restarts=1)
    counter = future.result(60)
    assert counter.increment().result(60) == 101
    first_worker = counter.address
    os.kill(counter.pid().result(60), signal.SIGKILL)
    outcomes = []
    for _ in range(3):  # in flight at the death, or sent after it: lost, or the new actor's
        try:
            outcomes.append(counter.increment().result(60))
        except ActorLost:
            outcomes.append("lost")
    made_again = [o for o in outcomes if o != "lost"]
    assert made_again == list(range(101, 101 + len(made_again))), outcomes  # Counter(100)
    assert outcomes[-1] != "lost", outcomes
    assert counter.address != first_worker
    assert future.result(60).address == counter.address


def add_to(counter, n):
    assert isinstance(counter, Actor), type(counter)
    for _ in range(n):
        counter.increment().result(60)


def count_of(counter, _after):
    return counter.n


def test_dask_graphs_make_actors_named_by_actors_as_dask_takes_it(cluster):
    dask = pytest.importorskip("dask")
    e = cluster.executor()
    counter = dask.delayed(Counter)()
    total = dask.delayed(count_of)(counter, [dask.delayed(add_to)(counter, n)
                                             for n in range(5)])
    assert e.compute(total, actors=counter).result(60) == 10
    # dask.compute hands it to the scheduler's get, as it does for dask.distributed
    assert total.compute(scheduler=e, actors={counter.key: True}) == 10
    persisted = e.persist(counter, actors=True)
    [future] = persisted.dask.values()
    handle = future.result(60)
    assert isinstance(handle, Actor) and handle.increment(2).result(60) == 2
    with pytest.raises(ValueError, match="actors= names a key"):
        e.compute(total, actors="no-such-key")
