"""Where tasks run, seen from inside them: each task returns the id of the process it ran in.

A task goes to the worker that would have to receive the fewest bytes of its inputs; tasks
without inputs spread over the workers; work the workers cannot start yet stays queued on the
center, so a worker that joins late still gets some.
"""
from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30
BIG = 2_000_000  # bytes: far more than any small input, so "most bytes" is unambiguous


def where(*inputs, **named_inputs):
    return os.getpid()


def make_bytes(n):
    return b"x" * n


def slow_where(i, delay=0.2):
    time.sleep(delay)
    return os.getpid()


@pytest.fixture
def pids(cluster, executor):
    """{worker address: pid of the process running its tasks}, checked against the fixture's."""
    by_address = cluster.worker_pids(executor)
    assert by_address == {w.address: w.worker_pid() for w in cluster.workers}
    return by_address


def test_a_task_on_one_scattered_future_runs_where_its_data_is(cluster, executor, pids):
    for worker in cluster.workers:
        [data] = executor.scatter([f"held by {worker.name}"], workers=[worker.address])
        assert executor.who_has(data)[data.key] == [worker.address]
        for _ in range(3):
            ran_in = executor.submit(where, data, pure=False).result(timeout=RESULT_TIMEOUT)
            assert ran_in == pids[worker.address]


def test_a_task_on_one_computed_future_runs_where_it_was_computed(cluster, executor, pids):
    for worker in cluster.workers:
        data = executor.submit(make_bytes, 1000, pure=False, workers=[worker.address])
        dependent = executor.submit(where, data)
        assert dependent.result(timeout=RESULT_TIMEOUT) == pids[worker.address]
        assert executor.who_has(data)[data.key] == [worker.address]


def test_with_inputs_on_several_workers_it_runs_where_the_most_bytes_are(cluster, executor,
                                                                           pids):
    a, b = cluster.workers

    def on(worker, nbytes):
        """Fresh data (a task copies its inputs, so each case needs its own)."""
        [future] = executor.scatter([make_bytes(nbytes)], workers=[worker.address], hash=False)
        return future

    def ran_in(*args, **kwargs):
        return executor.submit(where, *args, pure=False, **kwargs).result(timeout=RESULT_TIMEOUT)

    assert ran_in(on(a, BIG), on(b, 10)) == pids[a.address]
    assert ran_in(on(a, 10), on(b, BIG)) == pids[b.address]
    assert ran_in(on(b, 10), big=on(a, BIG)) == pids[a.address]  # keyword inputs count too
    # Bytes decide, not the number of inputs: two small ones lose to one big one ...
    assert ran_in(on(a, BIG), on(b, 10), on(b, 11)) == pids[a.address]
    # ... and two big ones, nested in a list, win over one.
    assert ran_in([on(a, BIG), on(b, BIG), on(b, BIG // 2)]) == pids[b.address]


def test_computed_inputs_of_different_sizes_pull_the_task_to_the_bigger(cluster, executor, pids):
    a, b = cluster.workers
    big_on_b = executor.submit(make_bytes, BIG, workers=[b.address])
    small_on_a = executor.submit(make_bytes, 100, workers=[a.address])
    combined = executor.submit(where, small_on_a, big_on_b)
    assert combined.result(timeout=RESULT_TIMEOUT) == pids[b.address]
    # The small input was copied to b for the task; the big one never moved.
    assert executor.who_has(big_on_b)[big_on_b.key] == [b.address]


def test_tasks_without_inputs_spread_over_both_workers(cluster, executor, pids):
    futures = executor.map(slow_where, range(8), pure=False)
    ran_in = executor.gather(futures, timeout=RESULT_TIMEOUT)
    assert set(ran_in) == set(pids.values())
    counts = sorted(ran_in.count(pid) for pid in pids.values())
    assert counts[0] >= 2, f"one worker ran only {counts[0]} of 8 equal tasks"


def gated_where(i, gate, delay=0.2):
    """``slow_where`` once the file ``gate`` exists."""
    while not os.path.exists(gate):
        time.sleep(0.01)
    return slow_where(i, delay)


@pytest.mark.cluster(n_workers=1, nthreads=1)
@pytest.mark.timeout(90)
def test_a_worker_that_joins_later_gets_work_from_a_long_queue(cluster, executor,
                                                               wait_until, tmp_path):
    [first] = cluster.workers
    # The queue waits for the file, so it is still long when the late worker is in, however
    # long that worker takes to start.
    gate = tmp_path / "gate"
    futures = executor.map(gated_where, range(40), gate=str(gate), pure=False)
    wait_until(lambda: cluster.worker_table(executor)[first.address]["processing"],
               RESULT_TIMEOUT, "the first worker to start on the queue")

    late = cluster.add_worker()
    cluster.wait_for_workers(executor, 2)
    gate.touch()

    ran_in = executor.gather(futures, timeout=RESULT_TIMEOUT * 2)
    late_share = ran_in.count(late.worker_pid())
    assert late_share >= 5, f"the late worker ran {late_share} of 40 queued tasks"
    assert ran_in.count(first.worker_pid()) + late_share == 40


def slow_where_with(data, i, delay=0.3):
    time.sleep(delay)
    return os.getpid()


def test_slow_tasks_piled_on_the_worker_with_their_input_are_shared_with_an_idle_one(
        cluster, executor, pids):
    """Each task would move a few bytes and run for 0.3 s: the idle worker steals some."""
    a, b = cluster.workers
    [data] = executor.scatter(["small input"], workers=[a.address])
    futures = executor.map(slow_where_with, [data] * 8, range(8))
    ran_in = executor.gather(futures)
    assert set(ran_in) == {pids[a.address], pids[b.address]}
    assert a.address in executor.who_has(data)[data.key]


def test_tasks_on_a_big_input_stay_with_it_when_moving_it_costs_more(cluster, executor, pids):
    a, b = cluster.workers
    big = executor.submit(make_bytes, 200_000_000, pure=False, workers=[a.address])
    futures = executor.map(slow_where_with, [big] * 4, range(4), delay=0.05)
    assert set(executor.gather(futures)) == {pids[a.address]}


def wait_for_event(name):
    from dist_client import Event
    Event(name).wait()
    return name


def test_fast_tasks_sent_behind_a_waiting_task_run_on_the_idle_worker(cluster, executor):
    """One worker's only thread waits on an event; fast tasks sent to it behind that task
    used to stay there, the other worker idle, until the event was set: a task setting it
    from among them would never have run."""
    from dist_client import Event
    executor.submit(where, pure=False).result(timeout=RESULT_TIMEOUT)  # (where is known fast)
    name = f"behind-{os.getpid()}-{time.monotonic_ns()}"
    waiting = executor.submit(wait_for_event, name)
    try:
        futures = executor.map(where, range(8), pure=False)
        executor.gather(futures, timeout=RESULT_TIMEOUT)
        assert not waiting.done()
    finally:
        Event(name, executor=executor).set()
    assert waiting.result(timeout=RESULT_TIMEOUT) == name
