"""Failures a user handles through the API: retries, cancel, wait, as_completed, timeouts, and
values that cannot make the trip -- each errs only its own task, and the cluster goes on."""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, CancelledError

import pytest
from dist_client import as_completed, wait

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30


@pytest.fixture
def e(module_cluster):
    executor = module_cluster.executor()
    yield executor
    executor.close()


def inc(x):
    return x + 1


def slow_inc(x, delay=0.05):
    time.sleep(delay)
    return x + 1


def sleep_then(value, seconds):
    time.sleep(seconds)
    return value


def wait_for_file_then(path, value):
    import os
    while not os.path.exists(path):
        time.sleep(0.01)
    return value


def after(value, _previous):
    return value


def fail(message):
    raise ValueError(message)


def flaky(counter_file, failures):
    """Fails the first ``failures`` calls (counted in a file every worker can see)."""
    with open(counter_file, "a+") as f:
        f.seek(0)
        calls = len(f.read()) + 1
        f.write("x")
    if calls <= failures:
        raise RuntimeError(f"flaky call {calls}")
    return calls


def touch_and_sleep(directory, name, seconds):
    with open(f"{directory}/{name}", "w"):
        pass
    time.sleep(seconds)
    return name


def make_lock():
    return threading.Lock()


# -- retries --------------------------------------------------------------------------------------
def test_retries_rerun_a_task_that_raised(e, tmp_path):
    counter = tmp_path / "calls"
    assert e.submit(flaky, str(counter), 2, retries=2).result(timeout=RESULT_TIMEOUT) == 3


def test_retries_run_out_with_the_last_error(e, tmp_path):
    counter = tmp_path / "calls"
    future = e.submit(flaky, str(counter), 5, retries=2)
    with pytest.raises(RuntimeError, match="flaky call 3"):
        future.result(timeout=RESULT_TIMEOUT)
    assert counter.read_text() == "xxx"


# -- cancel ---------------------------------------------------------------------------------------
def test_cancel_stops_work_not_yet_started_and_releases_the_keys(e, tmp_path, wait_until):
    futures = [e.submit(touch_and_sleep, str(tmp_path), f"t{i}", 0.5, pure=False)
               for i in range(40)]
    wait_until(lambda: any(tmp_path.iterdir()), 10, "the first tasks to start")
    e.cancel(futures)
    for future in futures:
        assert future.cancelled() and future.status == "cancelled"
        with pytest.raises(CancelledError):
            future.result(timeout=1)
    time.sleep(1.5)  # long enough for three more rounds of tasks, had any been left queued
    started = len(list(tmp_path.iterdir()))
    assert started <= 8, f"{started} of 40 cancelled tasks ran"  # at most those under way
    wait_until(lambda: not e.who_has(futures) or not any(e.who_has(futures).values()), 10,
               "the cancelled keys to be released")
    assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def megabyte(_):
    return b"x" * 2**20


def test_cancelling_futures_that_finished_cancels_them_too(e):
    """As dask's: their keys are released, so they cannot stay finished with a value that
    nobody holds any more (result() then waited for ever)."""
    small = e.submit(inc, 1, pure=False)
    large = e.submit(megabyte, 1, pure=False)
    failed = e.submit(fail, "before the cancel", pure=False)
    wait([small, large, failed], timeout=RESULT_TIMEOUT)
    e.cancel([small, large, failed])
    for future in (small, large, failed):
        assert future.cancelled() and future.status == "cancelled"
        with pytest.raises(CancelledError):
            future.result(timeout=RESULT_TIMEOUT)
    assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_future_cancel_and_resubmit(e):
    future = e.submit(sleep_then, "late", 5, pure=False)
    assert future.cancel() is True
    assert future.cancelled() and future.done()
    again = e.submit(sleep_then, "soon", 0, pure=False)
    assert again.result(timeout=RESULT_TIMEOUT) == "soon"
    # The same pure key cancelled and submitted again runs again.
    pure = e.submit(sleep_then, "pure", 0.2)
    pure.cancel()
    assert e.submit(sleep_then, "pure", 0.2).result(timeout=RESULT_TIMEOUT) == "pure"


# -- wait and as_completed ------------------------------------------------------------------------
def test_wait_all_first_completed_and_first_exception(e, tmp_path):
    go = tmp_path / "go"  # slow ends once the file exists, however long the rest takes
    fast = e.submit(sleep_then, "fast", 0, pure=False)
    slow = e.submit(wait_for_file_then, str(go), "slow", pure=False)
    try:
        done, not_done = wait([fast, slow], return_when=FIRST_COMPLETED,
                              timeout=RESULT_TIMEOUT)
        assert done == {fast} and not_done == {slow}

        bad = e.submit(fail, "first exception", pure=False)
        done, not_done = wait([bad, slow], return_when=FIRST_EXCEPTION, timeout=RESULT_TIMEOUT)
        assert bad in done and slow in not_done

        done, not_done = wait([slow], timeout=0.2)
        assert not done and not_done == {slow}
    finally:
        go.touch()
    done, not_done = wait([fast, slow, bad], return_when=ALL_COMPLETED, timeout=RESULT_TIMEOUT)
    assert done == {fast, slow, bad} and not not_done


def test_first_exception_waits_on_past_a_cancelled_future_as_concurrent_futures(e, tmp_path):
    go = tmp_path / "go"
    cancelled = e.submit(wait_for_file_then, str(tmp_path / "never"), "never", pure=False)
    cancelled.cancel()
    slow = e.submit(wait_for_file_then, str(go), "slow", pure=False)
    waiting = threading.Event()
    # (slow can end only after wait was called: returning before, wait would not have waited.)
    threading.Thread(target=lambda: waiting.wait(RESULT_TIMEOUT) and go.touch()).start()
    waiting.set()
    try:
        done, not_done = wait([cancelled, slow], return_when=FIRST_EXCEPTION,
                              timeout=RESULT_TIMEOUT)
    finally:
        (tmp_path / "never").touch()  # (should the cancel have left it running)
        go.touch()
    assert done == {cancelled, slow} and not not_done


def test_as_completed_yields_in_completion_order(e):
    # Each task needs the one before it, so they finish 2, 1, 0 whatever the threads are
    # doing (an earlier test's cancelled task may still hold one): the order given is 0, 1, 2.
    two = e.submit(sleep_then, 2, 0.2, pure=False)
    one = e.submit(after, 1, two, pure=False)
    zero = e.submit(after, 0, one, pure=False)
    assert [f.result() for f in as_completed([zero, one, two])] == [2, 1, 0]


def test_as_completed_with_futures_added_while_iterating(e):
    seen = []
    iterator = as_completed([e.submit(inc, 0, pure=False)])
    for future in iterator:
        value = future.result()
        seen.append(value)
        if value < 5:
            iterator.add(e.submit(inc, value, pure=False))
    assert seen == [1, 2, 3, 4, 5]


def test_as_completed_with_results_and_errors(e):
    futures = [e.submit(inc, 1, pure=False), e.submit(fail, "boom", pure=False)]
    results = {}
    for future, value in as_completed(futures, with_results=True, raise_errors=False):
        results[future.key] = value
    assert results[futures[0].key] == 2
    kind, error, _ = results[futures[1].key]
    assert kind is ValueError and isinstance(error, ValueError)
    with pytest.raises(ValueError, match="boom"):
        for _ in as_completed([e.submit(fail, "boom", pure=False)], with_results=True):
            pass


def test_as_completed_refuses_what_is_not_a_future_and_yields_the_rest(e):
    futures = e.map(inc, range(3), pure=False)
    with pytest.raises(TypeError, match="as_completed takes futures, not int"):
        as_completed([futures[0], 5])
    iterator = as_completed(futures[:2], timeout=RESULT_TIMEOUT)
    with pytest.raises(TypeError, match="not str"):
        iterator.add("x")
    iterator.add(futures[2])
    # The refused add was not counted: the iteration ends once the three are done.
    assert sorted(f.result() for f in iterator) == [1, 2, 3]


def test_as_completed_in_batches_has_ready_and_clear(e):
    """dask's as_completed: ``batches()`` yields lists of what finished, ``has_ready()`` says
    whether iterating would wait, ``clear()`` forgets every future added."""
    futures = [e.submit(inc, i, pure=False) for i in range(8)]
    wait(futures)
    iterator = as_completed(futures, with_results=True)
    assert iterator.has_ready()
    batches = list(iterator.batches())
    assert sorted(value for batch in batches for _, value in batch) == list(range(1, 9))
    assert len(batches) < 8 and not iterator.has_ready() and iterator.is_empty()

    slow = e.submit(sleep_then, "late", 0.5, pure=False)
    iterator = as_completed([slow, e.submit(inc, 1, pure=False)])
    assert not iterator.has_ready() or iterator.count() == 2
    iterator.clear()
    assert iterator.is_empty() and list(iterator) == []
    assert slow.result(timeout=30) == "late" and not iterator.has_ready()


# -- result(timeout=) -----------------------------------------------------------------------------
def test_result_timeout_raises_timeout_error_and_the_future_finishes_later(e, tmp_path):
    go = tmp_path / "go"
    future = e.submit(wait_for_file_then, str(go), "done", pure=False)
    try:
        with pytest.raises(TimeoutError):
            future.result(timeout=0.2)  # (it cannot finish before the file exists)
        assert not future.done()
    finally:
        go.touch()
    assert future.result(timeout=RESULT_TIMEOUT) == "done"
    with pytest.raises(TimeoutError):
        e.gather([e.submit(sleep_then, 1, 5, pure=False)], timeout=0.2)


# -- values that cannot make the trip -------------------------------------------------------------
def test_a_result_that_cannot_be_pickled_errs_only_its_task(e):
    bad = e.submit(make_lock, pure=False)
    good = e.map(slow_inc, range(10))
    with pytest.raises(Exception, match="lock") as info:
        bad.result(timeout=RESULT_TIMEOUT)
    context = info.value.__notes__[0]
    assert bad.key in context and "cannot be serialized" in context, context
    assert e.gather(good, timeout=RESULT_TIMEOUT) == list(range(1, 11))


class Unloadable:
    """Pickles, and cannot be unpickled anywhere."""

    def __reduce__(self):
        return (int, ("not a number",))


def make_unloadable():
    return Unloadable()


def test_an_input_no_worker_can_unpickle_errs_the_tasks_that_need_it(e):
    """The worker fetching it took the failure for the holder's, and asked again (another
    holder, then the center) for ever: the dependent task never ended."""
    holder, other = sorted(e.ncores())
    bad = e.submit(make_unloadable, pure=False, workers=[holder])
    dependent = e.submit(type, bad, pure=False, workers=[other])
    with pytest.raises(Exception, match="could not load its input") as info:
        dependent.result(timeout=RESULT_TIMEOUT)
    assert bad.key in str(info.value) and "not a number" in str(info.value), info.value
    assert e.submit(inc, 41, pure=False, workers=[other]).result(timeout=RESULT_TIMEOUT) == 42


def test_an_argument_the_worker_cannot_unpickle_errs_only_its_task(e, tmp_path, monkeypatch):
    # A class from a module only this process can import: its instances pickle by reference.
    (tmp_path / "client_only_module.py").write_text(
        "class Point:\n    def __init__(self, x):\n        self.x = x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import client_only_module

    try:
        bad = e.submit(inc, client_only_module.Point(1), pure=False)
        good = e.map(slow_inc, range(10))
        with pytest.raises(Exception, match="client_only_module") as info:
            bad.result(timeout=RESULT_TIMEOUT)
        context = info.value.__notes__[0]
        assert f"could not load task {bad.key} on the worker" in context, context
        assert e.gather(good, timeout=RESULT_TIMEOUT) == list(range(1, 11))
        assert e.submit(inc, 41, pure=False).result(timeout=RESULT_TIMEOUT) == 42
    finally:
        sys.modules.pop("client_only_module", None)
