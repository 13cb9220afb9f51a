"""Dispatch ahead with real processes: the next link of a chain is sent to the worker computing
its input and starts there the moment the input finishes; an input that errs, a worker that
dies, a release or cancel, retries, restrictions and stealing leave every result as it was."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from dist_protocol.features import FEATURES

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 60
WITHOUT_AHEAD = {"DIST_PROTOCOL_FEATURES": ",".join(f for f in FEATURES if f != "dispatch-ahead")}


def slow_inc(x, delay=0.01):
    time.sleep(delay)
    return x + 1


def noted_inc(x, path, delay=0.0):
    """``x + 1``, leaving a line in ``path`` each time it runs."""
    with open(path, "a") as f:
        f.write("ran\n")
    time.sleep(delay)
    return x + 1


def fail_once(x, path, delay=0.0):
    time.sleep(delay)
    marker = Path(path)
    if not marker.exists():
        marker.write_text("failed once")
        raise OSError("the first try fails")
    return x + 1


def boom(x, delay=0.0):
    time.sleep(delay)
    return x / 0


def runs(path: Path) -> int:
    return path.read_text().count("ran") if path.exists() else 0


def started_locally(executor, future) -> bool:
    """The worker started ``future``'s task on finishing its input (the task was there
    already), not on a compute-task from the center."""
    return any(e["worker"] and e["start"] == "waiting" and e["finish"] == "ready"
               and e["stimulus_id"].startswith("task-succeeded")
               for e in executor.story(future))


def sent_ahead(executor, future) -> bool:
    """On a cluster of one worker: the task reached the worker while its input was not done
    (it waited there; an input held already would have made it ready at once)."""
    return any(e["worker"] and e["finish"] == "waiting" for e in executor.story(future))


def running(executor, future) -> bool:
    return any(e["worker"] and e["finish"] == "executing" for e in executor.story(future))


def chain(executor, length, delay=0.01, first=0, **options):
    futures = [executor.submit(slow_inc, first, delay, **options)]
    for _ in range(length - 1):
        futures.append(executor.submit(slow_inc, futures[-1], delay, **options))
    return futures


@pytest.mark.cluster(n_workers=1)
def test_a_chain_s_links_start_on_the_worker_as_their_inputs_finish(executor):
    futures = chain(executor, 30, delay=0.02)
    assert futures[-1].result(timeout=RESULT_TIMEOUT) == 30
    assert sum(started_locally(executor, f) for f in futures[1:]) >= 20


@pytest.mark.cluster(n_workers=1, env=WITHOUT_AHEAD)
def test_a_worker_without_the_feature_is_sent_each_link_when_its_input_is_done(executor):
    futures = chain(executor, 10)
    assert futures[-1].result(timeout=RESULT_TIMEOUT) == 10
    assert not any(started_locally(executor, f) for f in futures[1:])


@pytest.mark.cluster(n_workers=1)
def test_an_input_that_errs_never_starts_the_task_waiting_for_it(executor, tmp_path):
    noted = tmp_path / "dependent"
    a = executor.submit(boom, 1, 0.3)
    b = executor.submit(noted_inc, a, str(noted))
    c = executor.submit(noted_inc, b, str(noted))
    with pytest.raises(ZeroDivisionError):
        c.result(timeout=RESULT_TIMEOUT)
    assert isinstance(b.exception(timeout=RESULT_TIMEOUT), ZeroDivisionError)
    assert sent_ahead(executor, b)
    assert runs(noted) == 0
    # The worker goes on with other work.
    assert executor.submit(slow_inc, 1).result(timeout=RESULT_TIMEOUT) == 2


@pytest.mark.cluster(n_workers=1)
def test_an_input_retried_runs_the_waiting_task_once_with_the_retried_value(executor, tmp_path):
    noted = tmp_path / "dependent"
    a = executor.submit(fail_once, 1, str(tmp_path / "tried"), 0.2, retries=1)
    b = executor.submit(noted_inc, a, str(noted))
    assert b.result(timeout=RESULT_TIMEOUT) == 3
    assert sent_ahead(executor, b)
    assert runs(noted) == 1


@pytest.mark.cluster(n_workers=2, nanny=True)
def test_a_worker_killed_in_the_middle_of_a_chain_the_chain_ends_on_the_other(cluster, executor,
                                                                             wait_until):
    futures = chain(executor, 60, delay=0.05)
    wait_until(lambda: sum(f.done() for f in futures) >= 10, 30, "a sixth of the chain")
    running = executor.who_has(futures[9])[futures[9].key]
    doomed = next(w for w in cluster.workers if w.address in running)
    doomed.kill_worker_process()
    assert [f.result(timeout=RESULT_TIMEOUT) for f in futures] == list(range(1, 61))


@pytest.mark.cluster(n_workers=1)
def test_cancelling_the_waiting_task_keeps_it_from_running(executor, tmp_path, wait_until):
    noted = tmp_path / "dependent"
    a = executor.submit(slow_inc, 1, 1.0)
    b = executor.submit(noted_inc, a, str(noted))
    wait_until(lambda: sent_ahead(executor, b), 30, "b to wait on the worker")
    b.cancel()
    assert a.result(timeout=RESULT_TIMEOUT) == 2
    assert b.cancelled()
    # A task after a on the same worker has run: b would have run before it.
    assert executor.submit(slow_inc, a).result(timeout=RESULT_TIMEOUT) == 3
    assert runs(noted) == 0


@pytest.mark.cluster(n_workers=1)
def test_releasing_the_chain_while_it_runs_frees_the_waiting_task(executor, tmp_path,
                                                                   wait_until):
    noted = tmp_path / "dependent"
    a = executor.submit(slow_inc, 1, 1.0)
    b = executor.submit(noted_inc, a, str(noted))
    wait_until(lambda first=a, second=b: running(executor, first)
               and sent_ahead(executor, second), 30,
               "a to run and b to wait for it on the worker")
    del a, b  # released while a runs and b waits there
    # One thread: these run after a, and b would have started the moment a finished.
    later = [executor.submit(slow_inc, i, 0.3) for i in range(3)]
    assert executor.gather(later, timeout=RESULT_TIMEOUT) == [1, 2, 3]
    assert runs(noted) == 0


@pytest.mark.cluster(n_workers=2)
def test_restrictions_decide_where_the_dependent_runs(cluster, executor):
    one, two = (w.name for w in cluster.workers)
    a = executor.submit(slow_inc, 1, 0.3, workers=[one])
    b = executor.submit(slow_inc, a, workers=[two])
    c = executor.submit(slow_inc, b, workers=[two])
    assert c.result(timeout=RESULT_TIMEOUT) == 4
    addresses = {w.name: w.address for w in cluster.workers}
    assert executor.who_has(b)[b.key] == [addresses[two]]


@pytest.mark.cluster(n_workers=1)
def test_a_worker_joining_late_takes_work_and_every_dependent_runs_once(cluster, executor,
                                                                       tmp_path, wait_until):
    roots = [executor.submit(slow_inc, i, 0.2) for i in range(12)]
    noted = [tmp_path / f"dependent-{i}" for i in range(12)]
    dependents = [executor.submit(noted_inc, r, str(p)) for r, p in zip(roots, noted)]
    wait_until(lambda: any(r.done() for r in roots), 30, "the first root")
    cluster.add_worker()  # idle: it steals what the first has not started
    assert executor.gather(dependents, timeout=RESULT_TIMEOUT) == [i + 2 for i in range(12)]
    assert [runs(p) for p in noted] == [1] * 12


# -- a line of links waiting ahead: a chain faster than the center's round trip has its next
# links on the worker, each waiting for the one before.

def inc(x):
    return x + 1


def fail_at(x, at, path):
    """``x + 1``, but fails at ``x == at`` (noting it in ``path``, once)."""
    if x == at:
        with open(path, "a") as f:
            f.write("failed\n")
        time.sleep(0.3)  # (the links behind it are sent ahead meanwhile)
        raise ZeroDivisionError(f"link {x}")
    return x + 1


@pytest.mark.cluster(n_workers=1)
def test_a_fast_chain_s_links_nearly_all_start_on_the_worker(executor):
    # A link of a millisecond takes the worker less time than the center takes to answer its
    # finish: with one task ahead, about one link in five started on a compute-task (and
    # one in two for inc alone); with a line of them ahead, nearly none does.
    futures = chain(executor, 300, delay=0.001)
    assert futures[-1].result(timeout=RESULT_TIMEOUT) == 300
    local = sum(started_locally(executor, f) for f in futures[1:])
    assert local >= 0.9 * 299, local


@pytest.mark.cluster(n_workers=1)
def test_a_link_that_errs_in_a_long_chain_runs_none_of_the_links_waiting_behind_it(
        executor, tmp_path):
    noted = tmp_path / "after"
    failed = tmp_path / "failed"
    before = [executor.submit(inc, 0)]
    for _ in range(49):
        before.append(executor.submit(fail_at, before[-1], -1, str(failed)))
    erring = executor.submit(fail_at, before[-1], 50, str(failed))
    after = [executor.submit(noted_inc, erring, str(noted))]
    for _ in range(49):
        after.append(executor.submit(noted_inc, after[-1], str(noted)))
    with pytest.raises(ZeroDivisionError, match="link 50"):
        after[-1].result(timeout=RESULT_TIMEOUT)
    assert [f.result(timeout=RESULT_TIMEOUT) for f in before] == list(range(1, 51))
    assert all(isinstance(f.exception(timeout=RESULT_TIMEOUT), ZeroDivisionError)
               for f in after)
    # The links behind it were waiting on the worker for it, and none ran.
    assert sum(sent_ahead(executor, f) for f in after[:4]) >= 2
    assert runs(noted) == 0 and failed.read_text() == "failed\n"
    assert executor.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


@pytest.mark.cluster(n_workers=1)
def test_a_link_retried_in_a_long_chain_runs_each_link_behind_it_once(executor, tmp_path):
    noted = tmp_path / "after"
    front = chain(executor, 20, delay=0.0)
    retried = executor.submit(fail_once, front[-1], str(tmp_path / "tried"), 0.3, retries=1)
    after = [executor.submit(noted_inc, retried, str(noted))]
    for _ in range(29):
        after.append(executor.submit(noted_inc, after[-1], str(noted)))
    assert [f.result(timeout=RESULT_TIMEOUT) for f in after] == list(range(22, 52))
    assert sent_ahead(executor, after[0])
    assert runs(noted) == 30


@pytest.mark.cluster(n_workers=2, nanny=True)
def test_a_worker_killed_in_the_middle_of_a_fast_chain_the_chain_ends_right_on_the_other(
        cluster, executor, wait_until):
    futures = chain(executor, 400, delay=0.002)
    wait_until(lambda: sum(f.done() for f in futures) >= 100, 60, "a quarter of the chain")
    holders = executor.who_has(futures[99])[futures[99].key]
    doomed = next(w for w in cluster.workers if w.address in holders)
    doomed.kill_worker_process()
    # Every link's value is its place in the chain: none ran with a wrong input.
    assert [f.result(timeout=RESULT_TIMEOUT) for f in futures] == list(range(1, 401))


@pytest.mark.cluster(n_workers=1)
def test_cancelling_a_chain_s_result_keeps_its_line_waiting_ahead_from_running(
        executor, tmp_path, wait_until):
    noted = tmp_path / "line"
    a = executor.submit(slow_inc, 1, 1.0)
    line = [executor.submit(noted_inc, a, str(noted))]
    for _ in range(5):
        line.append(executor.submit(noted_inc, line[-1], str(noted)))
    wait_until(lambda: all(sent_ahead(executor, f) for f in line[:4]), 30,
               "four links to wait on the worker")
    executor.cancel(line)
    assert a.result(timeout=RESULT_TIMEOUT) == 2
    assert all(f.cancelled() for f in line)
    # A task after a on the same worker has run: the line would have run before it.
    assert executor.submit(slow_inc, a).result(timeout=RESULT_TIMEOUT) == 3
    assert runs(noted) == 0


@pytest.mark.cluster(n_workers=1)
def test_releasing_a_chain_while_its_line_waits_ahead_runs_none_of_it(executor, tmp_path,
                                                                      wait_until):
    noted = tmp_path / "line"
    a = executor.submit(slow_inc, 1, 1.0)
    line = [executor.submit(noted_inc, a, str(noted))]
    for _ in range(5):
        line.append(executor.submit(noted_inc, line[-1], str(noted)))
    wait_until(lambda first=a, links=line: running(executor, first)
               and all(sent_ahead(executor, f) for f in links[:4]),
               30, "a to run and four links to wait for it on the worker")
    del a, line
    later = [executor.submit(slow_inc, i, 0.3) for i in range(3)]
    assert executor.gather(later, timeout=RESULT_TIMEOUT) == [1, 2, 3]
    assert runs(noted) == 0


def wait_for_marker(path, timeout=RESULT_TIMEOUT):
    """Blocks its thread until ``path`` exists (or fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return "released"


def leave_file(path):
    Path(path).write_text("ran")
    return path


def queued_on_worker(executor, future) -> bool:
    """The task reached the worker and waits there for a thread."""
    return any(e["worker"] and e["finish"] == "ready" for e in executor.story(future))


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_shutdown_cancel_futures_drops_the_tasks_queued_on_the_worker(executor, tmp_path,
                                                                      wait_until):
    marker = tmp_path / "go"
    view = executor.get_executor()
    first = view.submit(wait_for_marker, str(marker))
    queued = [view.submit(leave_file, str(tmp_path / f"ran-{i}")) for i in range(6)]
    wait_until(lambda: running(executor, first), 30, "the first task to run")
    on_worker = wait_until(lambda: [f for f in queued if queued_on_worker(executor, f)], 30,
                           "a task to be sent ahead to the busy worker")

    view.shutdown(wait=False, cancel_futures=True)

    wait_until(lambda: all(f.done() for f in queued), 30, "the queued futures to settle")
    assert all(f.cancelled() for f in queued), [f.status for f in queued]
    assert on_worker and not first.done()
    marker.write_text("go")
    assert first.result(timeout=RESULT_TIMEOUT) == "released"
    # One thread: a task submitted now runs after anything left on the worker.
    assert executor.submit(slow_inc, 1).result(timeout=RESULT_TIMEOUT) == 2
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == []
