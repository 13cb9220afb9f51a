"""A task's exception reaches the client as itself, with the worker's traceback; the tasks that
depend on it fail with the same error; the cluster goes on."""
from __future__ import annotations

import traceback

import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30


class TemperatureError(Exception):
    """Defined in this module, so the worker only knows it from the pickled function."""

    def __init__(self, degrees):
        super().__init__(f"too hot: {degrees}")
        self.degrees = degrees


def inc(x):
    return x + 1


def check_temperature(degrees):
    if degrees > 100:
        raise TemperatureError(degrees)
    return degrees


# Functions sent by value carry no file name (cloudpickle drops it), so a remote traceback
# cannot quote their source; it names the function and the line that raised.
RAISING_LINE = f"line {check_temperature.__code__.co_firstlineno + 2}, in check_temperature"


def divide_by_zero(x):
    return x / 0


def unpicklable_error(x):
    import threading

    class Unsendable(Exception):
        def __reduce__(self):
            return (threading.Lock, ())  # a lock travels nowhere

    raise Unsendable(f"cannot be sent: {x}")


def unprintable_error(x):
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str")

        def __repr__(self):
            raise RuntimeError("no repr")

    raise Unprintable(x)


@pytest.fixture(scope="module")
def e(module_cluster):
    with Executor(module_cluster.address) as executor:
        yield executor


def test_the_original_exception_type_and_message(e):
    future = e.submit(divide_by_zero, 1)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        future.result(timeout=RESULT_TIMEOUT)
    assert future.status == "error"
    assert isinstance(future.exception(timeout=RESULT_TIMEOUT), ZeroDivisionError)


def test_an_exception_class_of_the_users_own(e):
    future = e.submit(check_temperature, 150)
    with pytest.raises(TemperatureError, match="too hot: 150") as caught:
        future.result(timeout=RESULT_TIMEOUT)
    assert type(caught.value) is TemperatureError
    assert caught.value.degrees == 150
    assert e.submit(check_temperature, 20).result(timeout=RESULT_TIMEOUT) == 20


def test_the_remote_traceback_in_traceback_and_in_the_notes(e):
    future = e.submit(check_temperature, 200)
    remote = future.traceback_text(timeout=RESULT_TIMEOUT)
    assert isinstance(remote, str)
    assert RAISING_LINE in remote
    assert "TemperatureError: too hot: 200" in remote
    # traceback() is a traceback object the traceback module reads like a local one.
    frames = traceback.extract_tb(future.traceback())
    assert frames[-1].name == "check_temperature", frames
    assert frames[-1].lineno == check_temperature.__code__.co_firstlineno + 2, frames
    assert RAISING_LINE in "".join(traceback.format_tb(future.traceback()))
    assert traceback.format_tb(future.traceback())[-1].startswith("  File ")

    with pytest.raises(TemperatureError) as caught:
        future.result(timeout=RESULT_TIMEOUT)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "Traceback" in notes and RAISING_LINE in notes, notes

    assert e.submit(inc, 1).traceback(timeout=RESULT_TIMEOUT) is None


def test_dependents_of_a_failed_task_fail_with_the_same_error(e):
    failed = e.submit(check_temperature, 300)
    child = e.submit(inc, failed)
    grandchild = e.submit(inc, child)
    in_a_list = e.submit(sum, [e.submit(inc, 1), failed])
    for dependent in (child, grandchild, in_a_list):
        with pytest.raises(TemperatureError, match="too hot: 300"):
            dependent.result(timeout=RESULT_TIMEOUT)
        assert dependent.status == "error"
    assert RAISING_LINE in grandchild.traceback_text(timeout=RESULT_TIMEOUT)


def test_gather_raises_the_first_error_or_skips_failures(e):
    futures = [e.submit(inc, 1), e.submit(divide_by_zero, 2), e.submit(inc, 3)]
    with pytest.raises(ZeroDivisionError):
        e.gather(futures, timeout=RESULT_TIMEOUT)
    assert e.gather(futures, errors="skip", timeout=RESULT_TIMEOUT) == [2, 4]


def test_an_exception_that_cannot_be_pickled_still_says_what_happened(e):
    future = e.submit(unpicklable_error, 7)
    with pytest.raises(Exception, match="cannot be sent: 7") as caught:
        future.result(timeout=RESULT_TIMEOUT)
    assert "Unsendable" in str(caught.value) or type(caught.value).__name__ == "Unsendable"
    assert "unpicklable_error" in future.traceback_text(timeout=RESULT_TIMEOUT)


def test_an_exception_whose_str_fails_errs_its_task_and_the_session_goes_on(e):
    """Rebuilding the error used to call its ``__str__`` on the client's connection, which
    failed and closed it: every other future of the session was lost with it."""
    other = e.submit(inc, 100)
    assert other.result(timeout=RESULT_TIMEOUT) == 101
    future = e.submit(unprintable_error, 7)
    error = future.exception(timeout=RESULT_TIMEOUT)
    assert type(error).__name__ == "Unprintable"
    assert "unprintable_error" in future.traceback_text(timeout=RESULT_TIMEOUT)
    assert other.status == "finished"
    assert other.result(timeout=RESULT_TIMEOUT) == 101
    assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_the_cluster_goes_on_after_errors(e, module_cluster):
    failures = e.map(divide_by_zero, range(20))
    assert all(f.exception(timeout=RESULT_TIMEOUT) is not None for f in failures)
    assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))
    assert len(e.ncores()) == len(module_cluster.workers)
    for worker in module_cluster.workers:
        assert worker.popen.poll() is None
    # Resubmitting the same failing call fails again rather than hanging.
    with pytest.raises(ZeroDivisionError):
        e.submit(divide_by_zero, 0).result(timeout=RESULT_TIMEOUT)


def raise_with_megabytes_of_text(size):
    raise ValueError("start " + "x" * size + " end")


def test_an_error_with_megabytes_of_text_is_whole_but_its_text_is_shortened(e):
    """The text travels in the message batch, which the center decodes on its event loop:
    100 MB of it (bytes in an exception's args) stalled the center until its workers were
    removed for silence. The pickled exception travels whole."""
    future = e.submit(raise_with_megabytes_of_text, 5_000_000)
    error = future.exception(timeout=RESULT_TIMEOUT)
    assert type(error) is ValueError
    assert len(str(error)) == 5_000_010
    text = future.traceback_text(timeout=RESULT_TIMEOUT)
    assert len(text) < 200_000
    assert "raise_with_megabytes_of_text" in text
    assert "characters left out" in text
    assert text.rstrip().endswith(" end")


def recurse_a_million_deep():
    import sys

    def down(depth):
        return down(depth + 1) + 1

    limit = sys.getrecursionlimit()
    # Python 3.10 takes C stack for every Python call too: a thread's 8 MB overflows
    # between 20,000 and 50,000 calls, and the process dies of it as a plain script does.
    sys.setrecursionlimit(10**6 if sys.version_info >= (3, 11) else 20_000)
    try:
        return down(0)
    finally:
        sys.setrecursionlimit(limit)


def test_a_recursion_a_million_deep_errs_with_its_traceback_s_ends(e):
    # Formatting the million frames took the worker's task thread 15-25 s (the error that
    # much later); the first and last thousand are formatted, the count of the rest said.
    future = e.submit(recurse_a_million_deep)
    with pytest.raises(RecursionError):
        future.result(timeout=RESULT_TIMEOUT)
    remote = future.traceback_text(timeout=RESULT_TIMEOUT)
    assert "frames left out) ..." in remote and "in down" in remote, remote[-2000:]
    assert remote.rstrip().endswith("RecursionError: maximum recursion depth exceeded")
    frames = traceback.extract_tb(future.traceback())
    assert frames[-1].name == "down", frames[-3:]
    assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def reschedule_until_tried_on(folder, n):
    """Raises ``Reschedule`` on its first ``n - 1`` runs, then says where it ran each time."""
    import os
    import uuid

    from dist_client import Reschedule, get_worker

    with open(os.path.join(folder, uuid.uuid4().hex), "w") as mark:
        mark.write(get_worker().address)
    runs = sorted(os.listdir(folder))
    if len(runs) < n:
        raise Reschedule()
    return [open(os.path.join(folder, run)).read() for run in runs]


def test_a_task_raising_reschedule_runs_again_and_spends_no_retry(cluster, tmp_path):
    e = cluster.executor()
    future = e.submit(reschedule_until_tried_on, str(tmp_path), 4, retries=0)

    ran_on = future.result(RESULT_TIMEOUT)

    assert len(ran_on) == 4  # put back three times, never failed, though it had no retries
    assert set(ran_on) <= {w.address for w in cluster.workers}
    assert e.submit(inc, 1).result(RESULT_TIMEOUT) == 2
