"""Coordination primitives between real processes: clients and tasks share queues, variables,
locks, semaphores, events and topics through the center; a lock dies with its holder.

Tasks reach the primitives through an executor of their own on the worker's center (the
default inside a task), so a worker SIGKILLed while its task holds a lock takes that
connection, and with it the lease, down.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from dist_client import (Event, Lock, Pub, Queue, Semaphore, Sub, Variable)

pytestmark = pytest.mark.timeout(120)


def produce(name, n):
    queue = Queue(name)
    for i in range(n):
        queue.put(i)
    queue.put(None)
    return n


def consume(name):
    queue = Queue(name)
    got = []
    while (item := queue.get(timeout=60)) is not None:
        got.append(item)
    return got


def test_a_producer_and_a_consumer_task_share_a_queue(cluster):
    e = cluster.executor()
    consumer = e.submit(consume, "jobs", pure=False)
    producer = e.submit(produce, "jobs", 50, pure=False)
    assert producer.result(60) == 50
    assert consumer.result(60) == list(range(50))


def test_a_bounded_queue_makes_the_producer_wait_and_carries_futures(cluster):
    e = cluster.executor()
    queue = Queue("bounded", maxsize=1)
    queue.put(1)
    with pytest.raises(TimeoutError, match="full"):
        queue.put(2, timeout=0.1)
    assert queue.get() == 1
    future = e.submit(lambda x: x * 10, 4)
    queue.put({"future": future, "tuple": (1, 2)})
    key = future.key
    del future
    item = queue.get(timeout=10)
    assert item["tuple"] == (1, 2)  # pickled, so Python types come back as they were
    assert item["future"].key == key and item["future"].result(30) == 40
    with pytest.raises(TimeoutError, match="empty"):
        queue.get(timeout=0)


def read_variable(name):
    return Variable(name).get(timeout=30).result() + 1


def test_a_variable_keeps_its_future_alive_for_a_task_to_read(cluster):
    e = cluster.executor()
    variable = Variable("model")
    future = e.submit(sum, [1, 2, 3])
    future.result(30)
    variable.set(future)
    key = future.key
    del future  # only the variable holds the key now
    assert e.submit(read_variable, "model", pure=False).result(60) == 7
    assert key in e.who_has(variable.get())
    variable.delete()
    with pytest.raises(TimeoutError):
        variable.get(timeout=0.1)


def hold_lock_forever(name, holder):
    Lock(name).acquire()
    Variable(holder).set(os.getpid())
    time.sleep(600)


def test_a_lock_held_by_a_task_whose_worker_is_killed_is_released(cluster):
    e = cluster.executor()
    holder = e.submit(hold_lock_forever, "db", "db-holder", pure=False)
    pid = Variable("db-holder").get(timeout=60)
    lock = Lock("db")
    assert not lock.acquire(timeout=0.1)  # taken, by the task
    os.kill(pid, signal.SIGKILL)
    assert lock.acquire(timeout=60), "the lease died with its holder's worker"
    lock.release()
    del holder


def touch_shared(name, counter_name, hold):
    with Semaphore(2, name):
        Queue(counter_name).put(1)
        time.sleep(hold)
        Queue(counter_name).put(-1)
    return True


@pytest.mark.cluster(n_workers=2, nthreads=3)
def test_a_semaphore_limits_how_many_tasks_touch_a_resource_at_once(cluster):
    e = cluster.executor()
    futures = [e.submit(touch_shared, "pool", "inside", 0.2, pure=False) for _ in range(6)]
    assert all(f.result(60) for f in futures)
    queue, inside, most = Queue("inside"), 0, 0
    for _ in range(12):
        inside += queue.get(timeout=10)
        most = max(most, inside)
    assert most == 2
    assert Semaphore(2, "pool").get_value() == 0


def publish(topic, n, ready):
    Event(ready).wait(timeout=60)
    pub = Pub(topic)
    for i in range(n):
        pub.put({"i": i})
    return n


def subscribe(topic, n, ready):
    sub = Sub(topic)
    Event(ready).set()
    return [sub.get(timeout=60)["i"] for _ in range(n)]


@pytest.mark.cluster(n_workers=2, nthreads=2)
def test_pub_sub_between_two_tasks(cluster):
    e = cluster.executor()
    received = e.submit(subscribe, "news", 20, "listening", pure=False)
    sent = e.submit(publish, "news", 20, "listening", pure=False)
    assert sent.result(60) == 20
    assert received.result(60) == list(range(20))


def test_events_wake_waiters_in_other_threads_and_clear(cluster):
    cluster.executor()
    event = Event("go")
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(Event("go").wait(timeout=30)))
    waiter.start()
    event.set()
    waiter.join(30)
    assert woken == [True] and event.is_set()
    event.clear()
    assert not event.is_set() and not event.wait(timeout=0.05)


def test_each_kind_of_primitive_has_names_of_its_own_as_with_dask(cluster):
    cluster.executor()
    lock = Lock("shared-name")
    assert lock.acquire()
    Queue("shared-name").put(1)
    Variable("shared-name").set("v")
    Event("shared-name").set()
    assert Semaphore(max_leases=2, name="shared-name").acquire(timeout=5)
    with pytest.raises(RuntimeError, match="does not hold"):
        Lock("shared-name").release()
    assert lock.locked() and Queue("shared-name").get() == 1
    assert Variable("shared-name").get() == "v" and Event("shared-name").is_set()
    lock.release()
    assert not lock.locked()


def test_primitives_made_before_any_executor_bind_to_the_default_one_at_first_use(cluster):
    # As dask's: a Lock made at import time, before any client, works once one runs.
    from dist_client.current import default_executor

    with pytest.raises(ValueError, match=r"^No clients found \(no running Executor"):
        default_executor()  # (opening with dask's words, which code written for it matches)
    lock, queue, event = Lock("early"), Queue("early"), Event("early")
    with pytest.raises(ValueError, match="no running Executor"):
        queue.put(1)  # still none at first use: the error it always was
    e = cluster.executor()
    assert lock.acquire(timeout=10) and lock.executor is e
    queue.put(1)
    event.set()
    assert Queue("early").get(timeout=10) == 1 and Event("early").is_set()
    assert e.submit(_locked, lock, pure=False).result(30) is True
    lock.release()
    assert not lock.locked()


def _locked(lock):
    return lock.locked()


def test_values_that_cannot_be_pickled_fail_before_anything_is_sent(cluster):
    cluster.executor()
    queue = Queue("unpicklable")
    with pytest.raises(Exception, match="pickle"):
        queue.put(threading.Lock())
    assert queue.qsize() == 0


def test_the_primitives_are_awaitable_with_an_async_executor(cluster):
    from dist_client import AsyncExecutor

    async def main():
        async with AsyncExecutor(cluster.address) as e:
            queue = Queue("async-q", executor=e)
            await queue.put("x")
            assert await queue.qsize() == 1
            assert await queue.get(timeout=5) == "x"
            lock = Lock("async-lock", executor=e)
            async with lock:
                assert await lock.locked()
            assert not await lock.locked()
            sub = Sub("async-topic", executor=e)
            assert await Pub("async-topic", executor=e).put(3) == 1
            assert await sub.get(timeout=5) == 3

    asyncio.run(main())


def test_primitives_take_their_executor_as_dasks_client_keyword(cluster):
    e = cluster.executor()
    other = cluster.executor()
    queue = Queue("by-client", client=e, maxsize=2)
    queue.put(1)
    assert (queue.executor, queue.get(timeout=10)) == (e, 1)
    variable = Variable("by-client-v", client=other)
    variable.set(5)
    assert (variable.executor, Variable("by-client-v", e).get(timeout=10)) == (other, 5)
    event = Event("by-client-e", client=e)
    event.set()
    assert event.executor is e and event.is_set()
    sub = Sub("by-client-t", client=e)
    assert sub.executor is e
    sub.close()
    with pytest.raises(TypeError, match="client"):
        Queue("both", e, client=other)


# A client process that takes a lock, both leases of a semaphore, waits in a queue's get and
# subscribes to a topic, then says so and waits to be killed.
HOLDING_CLIENT = r'''
import sys, threading
from dist_client import Executor, Lock, Queue, Semaphore, Sub
e = Executor(sys.argv[1])
assert Lock("kept-lock", executor=e).acquire(timeout=30)
semaphore = Semaphore(2, "kept-leases", executor=e)
assert semaphore.acquire(timeout=30) and semaphore.acquire(timeout=30)
queue = Queue("waited-on", executor=e)
threading.Thread(target=lambda: queue.get(timeout=300), daemon=True).start()
sub = Sub("listened-to", executor=e)
print("holding", flush=True)
sys.stdin.readline()
'''


def test_a_client_killed_while_holding_and_waiting_lets_go_of_everything(cluster):
    cluster.executor()  # (the default executor of the primitives below)
    holder = subprocess.Popen([sys.executable, "-c", HOLDING_CLIENT, cluster.address],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert not Lock("kept-lock").acquire(timeout=0.1)  # taken, by the other client
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        assert Lock("kept-lock").acquire(timeout=30), "the lock died with its client"
        semaphore = Semaphore(2, "kept-leases")
        assert semaphore.acquire(timeout=30) and semaphore.acquire(timeout=30)
        queue = Queue("waited-on")
        queue.put("mine")
        assert queue.get(timeout=30) == "mine", "a killed client's get took the value"
        assert Pub("listened-to").put("anyone?") == 0, "the killed client is still subscribed"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
