"""Workers die and hang: every result stays correct, every error says why, and nothing hangs.

Real ``dcenter``/``dworker`` processes (see conftest.py); a test SIGKILLs or SIGSTOPs the
process running one worker's tasks while a computation is under way.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest
from dist_client import KilledWorker

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 60


def slow_inc(x, delay=0.01):
    time.sleep(delay)
    return x + 1


def slow_inc_padded(x, delay=0.01):
    """``slow_inc`` with a result too big to travel with the center's notice: a client gets
    it only from a worker holding it."""
    time.sleep(delay)
    return (x + 1, b"\0" * 4096)


def slow_add(a, b, delay=0.01):
    time.sleep(delay)
    return a + b


def total(values):
    return sum(values)


def die():
    os._exit(1)


def exit_with(code):
    os._exit(code)


def terminate_own_process():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)


def deaths(cluster) -> int:
    """Worker processes that died, as their nannies report (a worker killed while printing
    leaves the report on the end of its unfinished line)."""
    return sum(w.output().count("dworker: worker process exited") for w in cluster.workers)


def finished(futures) -> int:
    return sum(f.done() for f in futures)


# -- a worker killed ----------------------------------------------------------------------------
def test_sigkill_a_worker_in_the_middle_of_a_map(cluster, executor, wait_until):
    doomed, survivor = cluster.workers
    futures = executor.map(slow_inc, range(400))
    wait_until(lambda: finished(futures) >= 100, 30, "a quarter of the map")
    doomed.kill_worker_process()
    assert executor.gather(futures, timeout=RESULT_TIMEOUT) == list(range(1, 401))
    assert set(executor.ncores()) == {survivor.address}


def test_sigkill_a_worker_in_the_middle_of_a_graph(cluster, executor, wait_until):
    doomed, _ = cluster.workers
    xs = executor.map(slow_inc, range(150))
    ys = [executor.submit(slow_add, xs[i], xs[i + 1]) for i in range(149)]
    zs = [executor.submit(slow_add, ys[i], ys[i + 1]) for i in range(148)]
    end = executor.submit(total, zs)
    del xs, ys  # only their lineage keeps them: lost copies are recomputed from it
    wait_until(lambda: finished(zs) >= 20, 30, "the graph's last layer to start finishing")
    doomed.kill_worker_process()
    expected_ys = [(i + 1) + (i + 2) for i in range(149)]
    expected_zs = [expected_ys[i] + expected_ys[i + 1] for i in range(148)]
    assert executor.gather(zs, timeout=RESULT_TIMEOUT) == expected_zs
    assert end.result(timeout=RESULT_TIMEOUT) == sum(expected_zs)


def test_a_lost_result_is_recomputed_through_a_chain_of_released_inputs(cluster, executor,
                                                                        wait_until):
    doomed, survivor = cluster.workers
    there = {"workers": [doomed.name], "allow_other_workers": True}
    a = executor.submit(slow_inc, 1, **there)
    b = executor.submit(slow_inc, a, **there)
    c = executor.submit(slow_inc, b, **there)
    assert c.result(timeout=RESULT_TIMEOUT) == 4
    del a, b  # c's inputs are released: only their lineage remains
    assert executor.who_has(c)[c.key] == [doomed.address]
    doomed.kill_worker_process()
    wait_until(lambda: executor.who_has(c)[c.key] == [survivor.address], 30,
               "c to be recomputed on the survivor")
    assert c.result(timeout=RESULT_TIMEOUT) == 4
    assert executor.submit(slow_inc, c).result(timeout=RESULT_TIMEOUT) == 5


# -- a worker hung ------------------------------------------------------------------------------
@pytest.mark.cluster(heartbeat_timeout=2)
def test_sigstop_a_worker_is_noticed_within_the_heartbeat_timeout(cluster, executor,
                                                                  wait_until):
    frozen, survivor = cluster.workers
    frozen_address = frozen.address
    futures = executor.map(slow_inc, range(200), delay=0.02)
    wait_until(lambda: finished(futures) >= 40, 30, "a fifth of the map")
    frozen.suspend()
    try:
        wait_until(lambda: set(executor.ncores()) == {survivor.address}, 30,
                   "the center to drop the silent worker")
        # Dropped for its silence: its connection stays open while it is stopped.
        silent = re.findall(r"worker (\S+) silent for [\d.]+ s: removing it",
                            cluster.center.output())
        assert frozen_address in silent, cluster.center.output()
        assert executor.gather(futures, timeout=RESULT_TIMEOUT) == list(range(1, 201))
    finally:
        frozen.resume()
    # Awake again, it finds its connection closed, reconnects and registers with its keys;
    # whatever it finished while frozen must not replace or corrupt anything.
    wait_until(lambda: set(executor.ncores()) == {frozen_address, survivor.address}, 20,
               "the resumed worker to register again")
    assert executor.gather(futures, timeout=RESULT_TIMEOUT) == list(range(1, 201))
    more = executor.map(slow_inc, range(200, 300), delay=0.001)
    assert executor.gather(more, timeout=RESULT_TIMEOUT) == list(range(201, 301))
    assert executor.submit(total, futures).result(timeout=RESULT_TIMEOUT) == sum(range(1, 201))


@pytest.mark.cluster(heartbeat_timeout=2)
def test_sigstop_a_worker_in_the_middle_of_a_graph(cluster, executor, wait_until):
    frozen, _ = cluster.workers
    xs = executor.map(slow_inc, range(100))
    ys = [executor.submit(slow_add, xs[i], xs[(i + 1) % 100]) for i in range(100)]
    zs = [executor.submit(slow_add, ys[i], ys[(i + 13) % 100]) for i in range(100)]
    del xs, ys
    wait_until(lambda: finished(zs) >= 5, 30, "the graph's last layer to start finishing")
    frozen.suspend()
    try:
        expected_ys = [(i + 1) + ((i + 1) % 100 + 1) for i in range(100)]
        expected_zs = [expected_ys[i] + expected_ys[(i + 13) % 100] for i in range(100)]
        assert executor.gather(zs, timeout=RESULT_TIMEOUT) == expected_zs
    finally:
        frozen.resume()


@pytest.mark.cluster(n_workers=3, heartbeat_timeout=2)
def test_a_worker_fetching_from_a_hung_peer_fetches_from_the_new_holder(cluster, executor):
    hung, fetcher, _ = cluster.workers
    x = executor.submit(slow_inc, 1, workers=[hung.name], allow_other_workers=True)
    warm = executor.submit(slow_inc, executor.submit(slow_inc, 10, workers=[hung.name]),
                           workers=[fetcher.name])
    assert warm.result(timeout=RESULT_TIMEOUT) == 12  # the fetcher is connected to the peer
    assert x.result(timeout=RESULT_TIMEOUT) == 2
    # Busy, so that x is made again on the third worker once the center drops the hung one.
    busy = executor.submit(slow_inc, 0, 4.0, workers=[fetcher.name], pure=False)
    hung.suspend()
    try:
        # Within RESULT_TIMEOUT, so not after the peer's request timeout (300 s): once the
        # center drops the hung worker, x is made again and fetched from its new holder.
        y = executor.submit(slow_inc, x, workers=[fetcher.name])
        assert y.result(timeout=RESULT_TIMEOUT) == 3
        assert busy.result(timeout=RESULT_TIMEOUT) == 1
    finally:
        hung.resume()


@pytest.mark.cluster(heartbeat_timeout=2)
def test_a_result_held_by_a_hung_worker_is_made_again_and_fetched_elsewhere(cluster, executor):
    hung, survivor = cluster.workers
    futures = executor.map(slow_inc_padded, range(20))
    assert [v for v, _ in executor.gather(futures, timeout=RESULT_TIMEOUT)] == list(range(1, 21))
    there = [f for f in futures if executor.who_has(f)[f.key] == [hung.address]]
    assert there
    hung.suspend()
    try:
        # The client was asking the hung worker; once the center drops it and makes the
        # results again, the client asks the new holder instead of waiting for ever.
        assert [v for v, _ in executor.gather(there, timeout=RESULT_TIMEOUT)] == \
            [futures.index(f) + 1 for f in there]
        assert all(executor.who_has(f)[f.key] == [survivor.address] for f in there)
    finally:
        hung.resume()


# -- a task that kills its worker ---------------------------------------------------------------
@pytest.mark.cluster(nanny=True)
def test_a_task_that_kills_its_worker_fails_with_killed_worker_naming_it(cluster, executor,
                                                                        wait_until):
    bomb = executor.submit(die)
    with pytest.raises(KilledWorker) as info:
        bomb.result(timeout=RESULT_TIMEOUT)
    message = str(info.value)
    assert bomb.key in message and "died" in message, message
    # Every death was blamed on the bomb: exactly three, and the nannies start new processes.
    cluster.wait_for_workers(executor, 2, timeout=30)
    assert deaths(cluster) == 3
    started = {a for w in cluster.workers for a in w.matching("Start worker at ")}
    named = set(re.findall(r"127\.0\.0\.1:\d+", message))
    assert len(named) == 3 and named <= started, (named, started)
    assert executor.gather(executor.map(slow_inc, range(20)), timeout=RESULT_TIMEOUT) \
        == list(range(1, 21))


@pytest.mark.cluster(nanny=True)
def test_tasks_beside_a_task_that_kills_its_worker_complete(cluster, executor):
    futures = executor.map(slow_inc, range(100), delay=0.05)
    bomb = executor.submit(die)
    others = executor.map(slow_inc, range(100, 150), delay=0.01)
    assert executor.gather(futures, timeout=RESULT_TIMEOUT) == list(range(1, 101))
    assert executor.gather(others, timeout=RESULT_TIMEOUT) == list(range(101, 151))
    with pytest.raises(KilledWorker, match=bomb.key):
        bomb.result(timeout=RESULT_TIMEOUT)
    cluster.wait_for_workers(executor, 2, timeout=30)
    assert deaths(cluster) == 3


# The nanny used to take these exit codes from the worker process as "stopped on purpose" (0),
# "misconfigured" (2) and "no center" (3), and a SIGTERM to the worker process alone as a
# request to stop: a task doing any of them ended its worker for good, nanny and all, and the
# task waited forever for a worker.
@pytest.mark.cluster(nanny=True)
@pytest.mark.parametrize("how", ["exit-0", "exit-2", "exit-3", "sigterm"])
def test_a_task_that_ends_its_process_on_purpose_is_a_killer_like_any_other(cluster, executor,
                                                                            how):
    if how == "sigterm":
        bomb = executor.submit(terminate_own_process, pure=False)
    else:
        bomb = executor.submit(exit_with, int(how.split("-")[1]), pure=False)
    with pytest.raises(KilledWorker, match=bomb.key):
        bomb.result(timeout=RESULT_TIMEOUT)
    cluster.wait_for_workers(executor, 2, timeout=30)
    assert deaths(cluster) == 3
    assert all(w.popen.poll() is None for w in cluster.workers)
    assert executor.gather(executor.map(slow_inc, range(10)), timeout=RESULT_TIMEOUT) \
        == list(range(1, 11))


def holds_the_gil(times, seconds):
    """Blocks its worker's every thread ``times`` times: a C call made without letting go
    of the GIL (as some extensions, big sorts and regexes do), with short pauses between."""
    import ctypes
    import time
    libc = ctypes.PyDLL(None)  # (PyDLL: the GIL stays held through the call)
    for _ in range(times):
        libc.sleep(seconds)
        time.sleep(1.0)
    return "done"


@pytest.mark.cluster(n_workers=1, heartbeat_timeout=1)
def test_a_task_holding_the_gil_past_the_heartbeat_timeout_is_no_killed_worker(cluster,
                                                                               executor):
    # Each hold silences the worker past the timeout: the center removes it, and it registers
    # again as soon as the task lets go. It never died; the task finishes.
    future = executor.submit(holds_the_gil, 4, 2, pure=False)
    assert future.result(timeout=RESULT_TIMEOUT) == "done"
    assert cluster.workers[0].popen.poll() is None


@pytest.mark.cluster(n_workers=3, heartbeat_timeout=1)
def test_a_task_holding_the_gil_is_not_handed_from_worker_to_worker(cluster, executor):
    # The hold silences the first worker past the timeout, then the second it moves to; the
    # center then holds the task for one of them to come back rather than silence the third
    # (without that: three removals within ~4 s, KilledWorker).
    future = executor.submit(holds_the_gil, 1, 6, pure=False)
    assert future.result(timeout=RESULT_TIMEOUT) == "done"
    silent = set(re.findall(r"worker (\S+) silent for [\d.]+ s: removing it",
                            cluster.center.output()))
    assert len(silent) <= 2, cluster.center.output()  # not the third
    assert {worker.address for worker in cluster.workers} - silent
    assert f"task {future.key} held: workers " in cluster.center.output()


def holds_the_gil_in_its_first_runs(runs_file, first_runs, seconds):
    """Holds the GIL for ``seconds`` in each of its first ``first_runs`` runs (counted in
    ``runs_file``), then returns at once."""
    import ctypes
    with open(runs_file, "a+") as runs:
        runs.write("x")
        runs.seek(0)
        run = len(runs.read())
    if run <= first_runs:
        ctypes.PyDLL(None).sleep(seconds)  # (PyDLL: the GIL stays held through the call)
    return run


@pytest.mark.cluster(n_workers=3, heartbeat_timeout=1)
def test_a_held_task_runs_again_once_its_silent_workers_die(cluster, executor, tmp_path,
                                                            wait_until):
    future = executor.submit(holds_the_gil_in_its_first_runs, str(tmp_path / "runs"), 2, 60,
                             pure=False)
    wait_until(lambda: any("went silent running it" in entry["stimulus_id"]
                           for entry in executor.story(future.key)), 30,
               "the task to be held after silencing two workers")
    silent = set(re.findall(r"worker (\S+) silent for [\d.]+ s: removing it",
                            cluster.center.output()))
    for worker in cluster.workers:
        if worker.address in silent:
            worker.kill_worker_process()  # their connections close: they did die
    assert future.result(timeout=RESULT_TIMEOUT) == 3
