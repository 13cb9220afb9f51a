"""Tasks that submit tasks, on real processes: ``get_executor``/``worker_executor`` inside a
task, ``secede``/``rejoin``, and what such tasks hold at the center (nothing, once done)."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
from dist_client import RemoteError, get_executor, rejoin, secede, worker_executor

TOKEN_ENV = {"DIST_TOKEN": "nested tasks share the cluster's token " * 2}


def fib(n):
    if n < 2:
        return n
    with worker_executor() as e:
        a = e.submit(fib, n - 1)
        b = e.submit(fib, n - 2)
        return a.result() + b.result()


def plain_fib(n):
    """fib with no secede anywhere: its waits give the thread back by themselves."""
    if n < 2:
        return n
    e = get_executor()
    a, b = e.submit(plain_fib, n - 1), e.submit(plain_fib, n - 2)
    return a.result() + b.result()


def sum_of_squares_waiting(n, how):
    """Waits on its sub-tasks in one of the client's blocking ways, with no secede."""
    from dist_client import as_completed, wait
    e = get_executor()
    futures = e.map(lambda i: i * i, range(n), pure=False)
    if how == "gather":
        return sum(e.gather(futures))
    if how == "wait":
        wait(futures)
    elif how == "as_completed":
        for _ in as_completed(futures):
            pass
    return sum(f.result() for f in futures)


def executor_id(_):
    return get_executor().id


def total(n):
    """Sums its sub-tasks' results, seceding and rejoining by hand."""
    e = get_executor()
    futures = e.map(lambda i: i * 10, range(n))
    secede()
    values = e.gather(futures)
    rejoin()
    return sum(values)


def submit_then_fail(n):
    with worker_executor() as e:
        futures = e.map(lambda i: i + 1, range(n))
        e.gather(futures)  # they ran: the center holds them for this task
    raise ValueError(f"failed after {len(futures)} sub-tasks")


def nested_or_leaf(n):
    if n == 0:
        return 0
    with worker_executor() as e:
        return e.submit(nested_or_leaf, n - 1).result() + 1


def wait_for_file(path):
    while not os.path.exists(path):  # the test makes it: an event from another process
        time.sleep(0.01)
    return path


def parent_of_a_blocked_child(pid_file, go_file):
    with open(pid_file, "a") as f:
        f.write(f"{os.getpid()}\n")
    with worker_executor() as e:
        return e.submit(wait_for_file, go_file).result()


def center_tasks(url: str) -> int:
    """The tasks the center holds, in every state (its dashboard's status)."""
    with urllib.request.urlopen(url.rstrip("/") + "/api/status", timeout=10) as response:
        return sum(json.loads(response.read())["tasks"].values())


def center_prefixes(url: str) -> list:
    with urllib.request.urlopen(url.rstrip("/") + "/api/tasks", timeout=10) as response:
        return json.loads(response.read())["progress"]


@pytest.fixture
def nested_cluster(processes):
    """A center with its dashboard (to count its tasks) and two single-threaded workers,
    with a token."""
    center = processes.start_center(dashboard=True, env=TOKEN_ENV)
    workers = [processes.start_worker(center.address, nthreads=1, env=TOKEN_ENV, wait=False)
               for _ in range(2)]
    for worker in workers:
        worker.wait_registered()
    executor = processes.executor(center.address, token=TOKEN_ENV["DIST_TOKEN"])
    executor.wait_for_workers(2)
    return center, workers, executor, center.wait_for("Dashboard at ")


@pytest.mark.timeout(300)
def test_recursive_fib_on_two_single_thread_workers_finishes(nested_cluster, wait_until):
    _, _, executor, url = nested_cluster
    future = executor.submit(fib, 20)
    assert future.result() == 6765
    del future
    wait_until(lambda: center_tasks(url) == 0, timeout=30, what="the center to forget fib")


@pytest.mark.timeout(300)
def test_tasks_waiting_on_their_sub_tasks_without_seceding_finish(nested_cluster):
    """Each of the two threads of the cluster is taken by a task that waits on tasks it
    submitted: without the waits giving the thread back, nothing could run them."""
    _, _, executor, _ = nested_cluster
    assert executor.submit(plain_fib, 12).result(timeout=240) == 144
    for how in ("gather", "wait", "as_completed", "result"):
        futures = executor.map(sum_of_squares_waiting, [4, 5, 6], [how] * 3, pure=False)
        assert executor.gather(futures, timeout=120) == [14, 30, 55], how


def sum_of_squares_computed(n):
    """Computes a dask graph on the cluster in the task, with no secede."""
    import dask
    squares = [dask.delayed(lambda i: i * i)(i, dask_key_name=f"square-{n}-{i}")
               for i in range(n)]
    return sum(dask.compute(*squares, scheduler=get_executor()))


@pytest.mark.timeout(300)
def test_tasks_computing_dask_graphs_without_seceding_finish(nested_cluster):
    """Both threads of the cluster are taken by tasks that compute a graph there."""
    _, _, executor, _ = nested_cluster
    futures = executor.map(sum_of_squares_computed, [4, 5], pure=False)
    assert executor.gather(futures, timeout=120) == [14, 30]


def test_a_worker_whose_tasks_used_the_cluster_stops_cleanly(nested_cluster):
    _, workers, executor, _ = nested_cluster
    assert executor.gather(executor.map(total, [2, 3])) == [10, 30]
    for worker in workers:  # each process holds its tasks' executor, connected
        worker.terminate()
        assert worker.wait(30) == 0


def test_tasks_of_one_worker_share_one_executor(nested_cluster):
    _, _, executor, _ = nested_cluster
    futures = executor.map(executor_id, range(6), workers=[executor.ncores().popitem()[0]])
    ids = set(executor.gather(futures))
    assert len(ids) == 1 and ids.pop().startswith("tasks-on-")


def test_secede_and_rejoin_by_hand(nested_cluster, wait_until):
    _, _, executor, url = nested_cluster
    assert executor.gather(executor.map(total, [3, 4, 5])) == [30, 60, 100]
    wait_until(lambda: center_tasks(url) <= 3, timeout=30, what="the sub-tasks to go")


def test_a_task_that_fails_after_submitting_leaks_nothing(nested_cluster, wait_until):
    _, _, executor, url = nested_cluster
    future = executor.submit(submit_then_fail, 5)
    with pytest.raises(ValueError, match="after 5 sub-tasks"):
        future.result()
    del future
    wait_until(lambda: center_tasks(url) == 0, timeout=10,
               what=f"the failed task's sub-tasks to be released {center_prefixes(url)}")


def test_a_function_run_on_the_event_loop_that_waits_is_run_on_a_thread(nested_cluster):
    _, _, executor, _ = nested_cluster
    worker = [executor.ncores().popitem()[0]]
    # Quick runs make the worker run the function on its event loop...
    leaves = executor.map(nested_or_leaf, [0] * 20, pure=False, workers=worker)
    assert executor.gather(leaves) == [0] * 20
    # ...where a run that waits on the cluster cannot stay.
    assert executor.submit(nested_or_leaf, 3, workers=worker).result() == 3


def test_a_worker_dying_under_a_waiting_task_leaks_nothing(nested_cluster, tmp_path,
                                                           wait_until):
    _, workers, executor, url = nested_cluster
    pid_file, go_file = tmp_path / "pids", tmp_path / "go"
    future = executor.submit(parent_of_a_blocked_child, str(pid_file), str(go_file))
    first_pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().split(),
                               timeout=30, what="the parent task to start")[0])
    victim = next(w for w in workers if w.worker_pid() == first_pid)
    victim.kill()  # with the parent waiting on its child, and its executor's connection
    go_file.write_text("go")

    assert future.result(timeout=60) == str(go_file)  # run again on the other worker
    del future
    wait_until(lambda: center_tasks(url) == 0, timeout=30,
               what="the center to forget the parent, the child and the dead worker's keys")


def test_outside_a_task_the_in_task_functions_say_so():
    with pytest.raises(ValueError, match="in a task on a dist worker"):
        get_executor()
    with pytest.raises(ValueError, match="in a task on a dist worker"):
        secede()


def test_a_nested_task_error_reaches_the_outer_client(nested_cluster):
    _, _, executor, _ = nested_cluster

    def outer():
        with worker_executor() as e:
            return e.submit(submit_then_fail, 2).result()

    with pytest.raises((ValueError, RemoteError), match="after 2 sub-tasks"):
        executor.submit(outer).result()


def dask_style_fib(n):
    """fib as dask code writes it: ``get_client``/``worker_client`` and dask's timeouts."""
    from dist_client import get_client, worker_client
    if n < 2:
        return n
    client = get_client(timeout="5s")
    assert client is get_client() is get_client(f"tcp://{client.address}")
    with worker_client(timeout="10s") as c:
        a, b = c.submit(dask_style_fib, n - 1), c.submit(dask_style_fib, n - 2)
        return c.gather([a, b], timeout=60)[0] + b.result()


def test_dask_names_for_the_tasks_executor(nested_cluster):
    """Code written for dask runs with only its import changed: ``get_client()`` inside a
    task is the worker's executor, outside one the current executor (or a new one to a
    given address), as dask's."""
    from dist_client import get_client, worker_client
    _, _, executor, _ = nested_cluster
    assert executor.submit(dask_style_fib, 10).result(timeout=120) == 55
    assert get_client() is executor is get_client(executor.address)
    with pytest.raises(ValueError, match="in a task on a dist worker"):
        with worker_client():
            pass
