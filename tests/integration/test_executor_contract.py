"""What code written for ``concurrent.futures`` expects of an executor, against real processes:
keywords reach the function, shutdown waits and keeps results, interpreter exit does not drop
work, errors while unpickling a result err only that future, and the original API's shapes
(``future.executor``, traceback objects, ``Executor((host, port))``)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings

import pytest
from dist_client import ClusterError, Executor, ExecutorClosedError, RemoteError, as_completed
from dist_protocol.serialize import SerializationError

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def echo(*args, **kwargs):
    return args, kwargs


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def make_big(n):
    return b"x" * n


class ExitOnUnpickle:
    """Unpickling it calls sys.exit: user code that runs in the client's I/O thread."""

    def __reduce__(self):
        return (sys.exit, ("unpickled in the client",))


def exit_on_unpickle():
    return ExitOnUnpickle()


# -- 6. keywords ------------------------------------------------------------------------------
def test_every_keyword_reaches_the_function_through_the_view(cluster):
    e = cluster.executor()
    view = e.get_executor()
    # The names of submit's own parameters and of dist's options are the function's here.
    keywords = dict(self=2, fn=3, key=4, pure=5, workers=6, priority=7, retries=8,
                    resources=9, allow_other_workers=10)
    assert view.submit(echo, 1, **keywords).result(RESULT_TIMEOUT) == ((1,), keywords)
    # The Executor itself takes dist's options, but submit's own names reach the function.
    assert e.submit(echo, 1, self=2, fn=3).result(RESULT_TIMEOUT) == ((1,), {"self": 2,
                                                                              "fn": 3})
    # Options for every call of a view are given to get_executor.
    address = next(iter(e.ncores()))
    pinned = e.get_executor(workers=[address])
    assert pinned.submit(os.getpid).result(RESULT_TIMEOUT) == e.run(os.getpid)[address]


def started_and_ended(seconds):
    start = time.monotonic()  # one clock for every process of the machine
    time.sleep(seconds)
    return start, time.monotonic()


@pytest.mark.cluster(n_workers=2, nthreads=3)
def test_max_workers_bounds_the_views_calls_on_the_cluster(cluster):
    e = cluster.executor()
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        e.get_executor(max_workers=0)
    view = e.get_executor(max_workers=2)
    spans = [f.result(RESULT_TIMEOUT) for f in [view.submit(started_and_ended, 0.2)
                                                for _ in range(6)]]
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = [sum(step for _, step in edges[:i + 1]) for i in range(len(edges))]
    assert max(running) == 2, spans  # six threads free, two calls at a time
    assert list(view.map(inc, range(5))) == [1, 2, 3, 4, 5]
    # Those held back are pending in the client; cancel_futures cancels them.
    futures = [view.submit(sleep_then, 0.2, i) for i in range(20)]
    view.shutdown(cancel_futures=True)
    assert sum(f.cancelled() for f in futures) >= 15
    assert all(f.done() for f in futures)
    assert all(f.result(0) == i for i, f in enumerate(futures) if not f.cancelled())


def test_views_calls_are_impure_and_run_each_time(cluster):
    view = cluster.executor().get_executor()
    futures = [view.submit(time.time_ns) for _ in range(3)]
    assert len({f.key for f in futures}) == 3


# -- 7. shutdown ------------------------------------------------------------------------------
def test_leaving_the_block_waits_and_results_stay_readable(cluster):
    with Executor(cluster.address) as e:
        slow = e.submit(sleep_then, 0.5, "done", pure=False)
        big = e.submit(make_big, 2_000_000, pure=False)  # too big to ride with the notice
    assert e.status == "closed"
    assert slow.done() and slow.result(0) == "done"
    assert big.result(0) == b"x" * 2_000_000
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        e.submit(inc, 1)


def wait_for_file_then(path, value):
    while not os.path.exists(path):
        time.sleep(0.01)
    return value


def test_shutdown_without_waiting_lets_the_work_finish(cluster, tmp_path):
    e = Executor(cluster.address)
    go = tmp_path / "go"
    futures = [e.submit(wait_for_file_then, str(go), i, pure=False) for i in range(4)]
    # The tasks cannot end before the file exists: shutdown returning first shows it did not
    # wait for them, however slowly the machine runs.
    shutdown = threading.Thread(target=e.shutdown, kwargs={"wait": False}, daemon=True)
    shutdown.start()
    shutdown.join(RESULT_TIMEOUT)
    try:
        assert not shutdown.is_alive(), "shutdown(wait=False) waited for the work"
        assert not any(f.done() for f in futures)
        with pytest.raises(RuntimeError):
            e.submit(inc, 1)
    finally:
        go.touch()
    assert [f.result(RESULT_TIMEOUT) for f in futures] == [0, 1, 2, 3]


def test_a_future_released_while_pending_is_cancelled_for_its_holder(cluster, tmp_path):
    """Its result, exception or await waited for ever: nothing reaches a released handle.
    They raise CancelledError at once instead, and done()/cancelled() and a done callback
    agree, as concurrent.futures has it for a cancelled future."""
    e = Executor(cluster.address)
    go = tmp_path / "go"
    try:
        future = e.submit(wait_for_file_then, str(go), 1, pure=False)
        future.release()
        assert future.done() and future.cancelled()
        called = []
        future.add_done_callback(called.append)  # done: called at once, in this thread
        assert called == [future]
        with pytest.raises(concurrent.futures.CancelledError, match="released"):
            future.result(RESULT_TIMEOUT)
        with pytest.raises(concurrent.futures.CancelledError, match="released"):
            future.exception(RESULT_TIMEOUT)

        async def awaited():
            return await asyncio.wait_for(future, RESULT_TIMEOUT)
        with pytest.raises(concurrent.futures.CancelledError, match="released"):
            asyncio.run(awaited())
    finally:
        go.touch()
    # A released future that had finished still says so, and the executor goes on.
    done = e.submit(inc, 1)
    assert done.result(RESULT_TIMEOUT) == 2
    done.release()
    assert done.done() and not done.cancelled()
    e.shutdown()


def test_a_wait_already_blocked_on_a_future_ends_when_another_thread_releases_it(
        cluster, tmp_path):
    """A thread in result(), and a coroutine awaiting the future, when another thread
    releases its last handle: cancelled there and then, as dask cancels a key its client
    releases (they waited until their timeout)."""
    e = Executor(cluster.address)
    go = tmp_path / "go"
    try:
        future = e.submit(wait_for_file_then, str(go), 1, pure=False)
        outcome: list[BaseException] = []
        waiting = threading.Event()

        def wait_in_result():
            waiting.set()
            try:
                future.result(RESULT_TIMEOUT)
            except BaseException as exc:  # noqa: BLE001 -- what it raised is the outcome
                outcome.append(exc)

        async def await_it():
            return await asyncio.wait_for(future, RESULT_TIMEOUT)
        awaiting = concurrent.futures.ThreadPoolExecutor(1).submit(asyncio.run, await_it())
        blocked = threading.Thread(target=wait_in_result)
        blocked.start()
        assert waiting.wait(RESULT_TIMEOUT)
        while not (future.keystate.callbacks and future.keystate.watchers):
            time.sleep(0.01)  # (until both waits are registered: nothing announces that)
        future.release()
        blocked.join(RESULT_TIMEOUT)
        assert not blocked.is_alive()
        assert [type(exc) for exc in outcome] == [concurrent.futures.CancelledError]
        assert "released" in str(outcome[0])
        with pytest.raises(concurrent.futures.CancelledError, match="released"):
            awaiting.result(RESULT_TIMEOUT)
    finally:
        go.touch()
    assert e.submit(inc, 1).result(RESULT_TIMEOUT) == 2
    e.shutdown()


def test_a_cancelled_future_stays_cancelled_when_its_key_is_submitted_again(cluster, tmp_path):
    """The new submit joined the key's state: the cancelled future turned pending and then
    took the new task's value, where a ``concurrent.futures`` future, once cancelled, stays
    so (and dask's keeps its ``FutureCancelledError``)."""
    e = cluster.executor()
    started, go = tmp_path / "started", tmp_path / "go"

    def mark_then_wait(value):
        open(started, "w").close()
        return wait_for_file_then(str(go), value)

    first = e.submit(mark_then_wait, 1, key="twice")
    try:
        waiting = e.submit(wait_for_file_then, str(started), None, pure=False)
        waiting.result(RESULT_TIMEOUT)  # the first call runs on its worker
        first.cancel()
        again = e.submit(mark_then_wait, 1, key="twice")
        seen = list(concurrent.futures.as_completed([first], timeout=RESULT_TIMEOUT))
        assert seen == [first]
    finally:
        go.touch()
    assert again.result(RESULT_TIMEOUT) == 1
    assert first.cancelled() and first.status == "cancelled"
    with pytest.raises(concurrent.futures.CancelledError, match="twice was cancelled"):
        first.result(0)
    first.release()  # lets go of the cancelled life only: the new one is still held
    del first
    assert again.result(RESULT_TIMEOUT) == 1
    assert list(e.who_has([again]).values()) != [[]]


def test_the_executor_side_methods_of_a_future_keep_the_standard_contract(cluster, tmp_path):
    """``set_result``/``set_exception`` failed on a private property ("property '_state' of
    'Future' object has no setter"), and ``set_running_or_notify_cancel`` of a finished
    future said True, where the standard Future raises ``RuntimeError``."""
    e = cluster.executor()
    go = tmp_path / "go"
    pending = e.submit(wait_for_file_then, str(go), 1, pure=False)
    try:
        assert pending.set_running_or_notify_cancel() is True
        for method, argument in (("set_result", 5), ("set_exception", ValueError())):
            with pytest.raises(concurrent.futures.InvalidStateError,
                               match=f"{method}: a dist Future is settled by its task"):
                getattr(pending, method)(argument)
        cancelled = e.submit(wait_for_file_then, str(go), 2, pure=False)
        cancelled.cancel()
        assert cancelled.set_running_or_notify_cancel() is False
    finally:
        go.touch()
    assert pending.result(RESULT_TIMEOUT) == 1
    with pytest.raises(RuntimeError, match="unexpected state"):
        pending.set_running_or_notify_cancel()
    with pytest.raises(concurrent.futures.InvalidStateError):
        pending.set_result(2)
    assert pending.result(0) == 1


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_cancel_futures_cancels_only_what_has_not_started(cluster):
    e = Executor(cluster.address)
    futures = [e.submit(sleep_then, 0.2, i, pure=False) for i in range(30)]
    futures[0].result(RESULT_TIMEOUT)  # the worker is busy from here on
    e.shutdown(wait=True, cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    finished = [f for f in futures if not f.cancelled()]
    assert len(cancelled) > 15, len(cancelled)
    assert finished and all(f.done() and f.exception() is None for f in finished)


def test_close_settles_pending_futures(cluster):
    e = Executor(cluster.address)
    slow = e.submit(sleep_then, 5, 1, pure=False)
    e.close()
    assert slow.cancelled()
    with pytest.raises(Exception, match="cancelled"):
        slow.result(1)


def test_every_call_after_close_raises_the_same_clear_error(cluster):
    e = Executor(cluster.address)
    done = e.submit(inc, 1)
    done.result(RESULT_TIMEOUT)
    e.close()
    assert e.gather([done]) == [2]  # a result already there stays readable
    for call in (lambda: e.submit(inc, 1), lambda: e.map(inc, [1]), lambda: e.scatter(1),
                 lambda: e.who_has(), lambda: e.ncores(), lambda: e.replicate([done]),
                 lambda: e.cancel([done]), lambda: e.restart()):
        with pytest.raises(ExecutorClosedError, match="closed") as info:
            call()
        assert isinstance(info.value, ClusterError) and isinstance(info.value, RuntimeError)


def _python(code: str, address: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter; on a timeout, its whole process group goes (a child
    it forked too)."""
    env = {**os.environ, "DIST_TEST_ADDRESS": address}
    with subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what it left behind
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_interpreter_exit_waits_for_work_and_refuses_new(cluster, tmp_path):
    marker = tmp_path / "ran"
    result = _python(f"""
        import atexit, os, time
        from dist_client import Executor

        @atexit.register
        def run_last():
            try:
                e.submit(abs, -1)
            except RuntimeError as exc:
                print("runtime-error:", exc)

        def slow_write(path):
            time.sleep(0.5)
            open(path, "w").write("yes")
            return 1

        e = Executor(os.environ["DIST_TEST_ADDRESS"])
        view = e.get_executor()
        view.submit(slow_write, {str(marker)!r})  # the future is dropped at once
        kept = e.submit(slow_write, {str(marker) + "2"!r})
    """, cluster.address)
    assert result.returncode == 0, result.stderr
    assert "runtime-error: cannot schedule new futures after interpreter shutdown" \
        in result.stdout, result.stdout + result.stderr
    assert marker.read_text() == "yes" and (tmp_path / "ran2").read_text() == "yes"


def test_one_ctrl_c_stops_a_program_waiting_for_work_that_cannot_run(cluster):
    # A task asking for a resource no worker has waits for one to join; the program waits
    # for it. Ctrl-C ends the program at once: the exit does not wait for that work again.
    code = textwrap.dedent("""
        import os
        import signal
        from dist_client import Executor

        # Python leaves SIGINT ignored when it starts with it ignored, as a background job
        # of a shell without job control does (a test run started that way): a program run
        # from a terminal has Python's own handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        e = Executor(os.environ["DIST_TEST_ADDRESS"])
        waiting = e.submit(abs, -1, resources={"GPU": 1})
        print("waiting", flush=True)
        waiting.result()
    """)
    env = {**os.environ, "DIST_TEST_ADDRESS": cluster.address}
    with subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as process:
        try:
            assert process.stdout.readline() == "waiting\n"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGINT, stderr  # as Python ends on Ctrl-C
    assert stderr.rstrip().endswith("dist: the program was interrupted: 1 futures not done "
                                    "were cancelled as their executors closed"), stderr


def test_a_forked_child_neither_waits_on_nor_takes_its_parents_executor(cluster):
    """A child forked from a process with an Executor (a pre-forking server, os.fork) has
    a copy without the connection's thread: it used to wait for ever at its exit for the
    parent's futures, and a call of its own for an answer that could not come."""
    result = _python("""
        import os, sys, time
        from dist_client import Executor

        def slow(x):
            time.sleep(0.5)
            return x + 1

        e = Executor(os.environ["DIST_TEST_ADDRESS"])
        pending = e.submit(slow, 1)
        pid = os.fork()
        if pid == 0:
            for what, call in [("submit", lambda: e.submit(abs, -1)),
                               ("result", lambda: pending.result())]:
                try:
                    call()
                except Exception as exc:
                    print(what, type(exc).__name__, exc, flush=True)
            sys.exit(0)  # a normal exit: the interpreter's exit hooks run
        _, status = os.waitpid(pid, 0)
        print("child status", status, flush=True)
        print("parent", pending.result(timeout=30), e.submit(slow, 10).result(timeout=30))
    """, cluster.address)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for what in ("submit", "result"):
        assert any(line.startswith(f"{what} ClusterError") and "was forked" in line
                   for line in lines), result.stdout
    assert "child status 0" in lines and "parent 2 11" in lines


def test_a_child_forked_while_another_thread_holds_the_clients_lock_still_exits(cluster):
    """The fork copies the client's lock as it was: held by a thread the child does not
    have (the I/O thread, often). Dropping a Future in the child used to wait on it for ever."""
    result = _python("""
        import os, sys, threading
        from dist_client import Executor

        e = Executor(os.environ["DIST_TEST_ADDRESS"])
        future = e.submit(abs, -1)
        future.result(timeout=30)
        held, release = threading.Event(), threading.Event()

        def hold_the_lock():
            with e.core.lock:
                held.set()
                release.wait()

        thread = threading.Thread(target=hold_the_lock)
        thread.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            del future  # its handle on the key goes
            sys.exit(0)
        release.set()
        thread.join()
        _, status = os.waitpid(pid, 0)
        print("child status", status, flush=True)
        print("parent", e.submit(abs, -2).result(timeout=30))
    """, cluster.address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["child status 0", "parent 2"], result.stderr


def test_shutdown_without_waiting_then_exit_still_finishes(cluster, tmp_path):
    marker = tmp_path / "ran"
    result = _python(f"""
        import os, time
        from dist_client import Executor

        def slow_write(path):
            time.sleep(0.5)
            open(path, "w").write("yes")

        e = Executor(os.environ["DIST_TEST_ADDRESS"])
        kept = e.get_executor().submit(slow_write, {str(marker)!r})
        e.shutdown(wait=False)
    """, cluster.address)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert marker.read_text() == "yes"


# -- 8. a result whose unpickling raises SystemExit ----------------------------------------------
def big_exit_on_unpickle():
    return [ExitOnUnpickle(), b"x" * 3_000_000]  # fetched from the worker, not with the news


def test_system_exit_while_unpickling_a_result_errs_only_that_future(cluster):
    e = cluster.executor()
    for make in (exit_on_unpickle, big_exit_on_unpickle):
        bad = e.submit(make, pure=False)
        with pytest.raises(SerializationError, match="SystemExit: unpickled in the client"):
            bad.result(RESULT_TIMEOUT)
        with pytest.raises(SerializationError, match="SystemExit"):
            e.gather([bad])
        assert e.status == "running"
    assert e.submit(inc, 1).result(RESULT_TIMEOUT) == 2  # the connection is alive
    assert e.gather(e.map(inc, range(3))) == [1, 2, 3]


# -- 9. map's keywords, pickling errors ------------------------------------------------------------
def test_map_takes_timeout_and_chunksize_as_concurrent_futures_does(cluster):
    e = cluster.executor()
    futures = e.map(echo, [1, 2], timeout=5, chunksize=2)
    assert [f.result(RESULT_TIMEOUT) for f in futures] == [((1,), {}), ((2,), {})]
    view = e.get_executor()
    assert list(view.map(inc, range(5), timeout=30, chunksize=2)) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="chunksize"):
        e.map(inc, [1], chunksize=0)
    with pytest.raises(TimeoutError):
        list(view.map(sleep_then, [2], [0], timeout=0.2))


def test_views_map_with_buffersize_reads_its_input_as_results_are_taken(cluster):
    view = cluster.executor().get_executor()
    read = []

    def numbers():  # (long enough to tell reading as needed from reading it all)
        for n in range(100_000):
            read.append(n)
            yield n
    results = view.map(inc, numbers(), buffersize=3)
    assert len(read) == 3  # submitted at once: the buffer
    taken = [next(results) for _ in range(5)]
    assert taken == [1, 2, 3, 4, 5]
    assert len(read) == 3 + 5  # one more read for each result taken: endless inputs work
    results.close()
    assert list(view.map(pow, [2, 3, 4], [3, 2, 1], buffersize=1)) == [8, 9, 4]
    with pytest.raises(ValueError, match="buffersize"):
        view.map(inc, [1], buffersize=0)
    with pytest.raises(TypeError, match="buffersize"):
        view.map(inc, [1], buffersize=2.5)


# Before Python 3.11, concurrent.futures', asyncio's and the builtin TimeoutError were three
# classes: code written for concurrent.futures catches the first.
TIMEOUT_CLASSES = [TimeoutError, concurrent.futures.TimeoutError, asyncio.TimeoutError]


@pytest.mark.parametrize("caught_as", TIMEOUT_CLASSES,
                         ids=["builtin", "concurrent.futures", "asyncio"])
def test_every_timeout_is_each_pythons_timeout_error(cluster, caught_as):
    e = cluster.executor()
    slow = e.submit(sleep_then, 3, "late", pure=False)
    waits = {
        "result": lambda: slow.result(timeout=0.05),
        "exception": lambda: slow.exception(timeout=0.05),
        "gather": lambda: e.gather([slow], timeout=0.05),
        "as_completed": lambda: list(as_completed([slow], timeout=0.05)),
        "view.map": lambda: list(e.get_executor().map(sleep_then, [3], [0], timeout=0.05)),
        "wait_for_workers": lambda: e.wait_for_workers(5, timeout=0.05),
    }
    for name, wait in waits.items():
        try:
            wait()
        except caught_as:
            continue
        raise AssertionError(f"{name} did not time out")
    assert slow.result(RESULT_TIMEOUT) == "late"  # the waits gave up, the task went on


def test_pickling_failures_are_picklingerrors_naming_the_culprit(cluster):
    e = cluster.executor()
    lock = threading.Lock()

    def holds_a_lock(x):
        with lock:
            return x

    with pytest.raises(pickle.PicklingError, match="holds_a_lock") as info:
        e.submit(holds_a_lock, 1)
    assert isinstance(info.value, SerializationError)
    with pytest.raises(pickle.PicklingError, match="keyword argument 'guard'.*lock"):
        e.submit(echo, 1, guard=threading.Lock())
    with pytest.raises(pickle.PicklingError, match="argument 1 .*lock"):
        e.get_executor().submit(echo, 1, threading.Lock())



class KeepsItsExecutor:
    """A pipeline object of the user's that keeps its executor and submits its own method."""

    def __init__(self, executor):
        self.executor = executor

    def step(self, x):
        return x


def test_a_function_holding_an_executor_is_refused_naming_the_executor(cluster):
    e = cluster.executor()
    pipeline = KeepsItsExecutor(e)
    with pytest.raises(pickle.PicklingError, match="an Executor cannot be pickled.*get_executor"):
        e.submit(pipeline.step, 1)
    assert e.submit(echo, 1).result(timeout=RESULT_TIMEOUT) == ((1,), {})


# -- 10. the original API's shapes ----------------------------------------------------------------
def fails_deep(x):
    return _raise(x)


def _raise(x):
    raise ValueError(f"bad {x}")


def test_future_executor_traceback_object_and_tuple_address(cluster):
    host, port = cluster.address.rsplit(":", 1)
    e = Executor((host, int(port)))
    try:
        future = e.submit(fails_deep, 3)
        assert future.executor is e
        with pytest.raises(ValueError, match="bad 3"):
            future.result(RESULT_TIMEOUT)
        tb = future.traceback()
        names = [frame.name for frame in traceback.extract_tb(tb)]
        assert names[-2:] == ["fails_deep", "_raise"], names
        assert "in _raise" in "".join(traceback.format_tb(tb))
        assert "ValueError: bad 3" in future.traceback_text()
        assert e.submit(inc, 1).traceback(RESULT_TIMEOUT) is None
    finally:
        e.close()


# -- errors that say what happened ---------------------------------------------------------------
class TwoArgumentError(Exception):
    def __init__(self, code, detail):
        super().__init__(f"error {code}: {detail}")
        self.code = code


class HoldsALock(Exception):
    pass


def raise_two_argument_error():
    raise TwoArgumentError(404, "no such record")


def raise_with_a_lock():
    raise HoldsALock(threading.Lock())


def test_a_custom_exception_keeps_its_type_or_says_why_not(cluster):
    e = cluster.executor()
    with pytest.raises(TwoArgumentError, match="error 404: no such record") as info:
        e.submit(raise_two_argument_error).result(RESULT_TIMEOUT)
    assert info.value.code == 404

    with pytest.raises(RemoteError, match="HoldsALock.*could not be sent.*_thread.lock"):
        e.submit(raise_with_a_lock).result(RESULT_TIMEOUT)


def test_a_large_argument_warns_and_names_scatter(cluster):
    e = cluster.executor()
    big = bytes(11 * 2**20)
    with pytest.warns(UserWarning, match=r"11\.0 MiB.*scatter") as caught:
        assert e.submit(len, big).result(RESULT_TIMEOUT) == len(big)
    assert caught[0].filename == __file__  # it points at the caller's line
    with pytest.warns(UserWarning, match="scatter"):
        e.map(len, [big, big])
    future = e.scatter(big)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert e.submit(len, future).result(RESULT_TIMEOUT) == len(big)


def test_repr_shows_what_is_known_without_asking_a_frozen_center(cluster):
    e = cluster.executor()
    held = e.map(inc, range(3))
    e.gather(held)
    shown: list[str] = []

    def show():
        shown.extend([repr(e), e._repr_html_()])

    cluster.center.suspend()  # a round trip now would hang until the center resumes
    try:
        showing = threading.Thread(target=show, daemon=True)
        showing.start()
        showing.join(RESULT_TIMEOUT)
        assert not showing.is_alive(), "repr waited for the center"
    finally:
        cluster.center.resume()
    text, html = shown
    assert text.startswith(f"<Executor: {cluster.address!r} workers=2 threads=2"), text
    assert text.endswith(" futures=3>"), text
    assert "<strong>Total threads: </strong>2" in html, html
    assert "<strong>Futures: </strong>3" in html, html


def log_and_wait(ident, log_name, stop_name):
    from dist_client import Event, Queue
    Queue(log_name).put(f"{ident} started")
    Event(stop_name).wait(RESULT_TIMEOUT)
    Queue(log_name).put(f"{ident} stopped")


def test_views_map_runs_without_iteration_and_its_timeout_cancels_the_calls_left(cluster):
    """Two of CPython's thread-pool tests, with the cluster's Queue and Event for their lists
    and events: a map never iterated still runs every call (shutdown waits for them), and a
    map whose iterator times out cancels its calls not yet started."""
    from dist_client import Event, Queue
    e = cluster.executor()
    log = Queue(f"log-{e.id}", executor=e)
    with e.get_executor() as view:
        view.map(log.put, range(10))  # (Queue.put pickles as the queue's name)
    assert sorted(log.get(timeout=RESULT_TIMEOUT) for _ in range(10)) == list(range(10))

    names = (log.name, f"stop-{e.id}")
    with e.get_executor(max_workers=1) as pool:
        first = pool.submit(log_and_wait, "first", *names)
        assert log.get(timeout=RESULT_TIMEOUT) == "first started"
        calls = pool.map(log_and_wait, ["second", "third"], [names[0]] * 2, [names[1]] * 2,
                         timeout=0)
        try:
            with pytest.raises(TimeoutError):
                next(calls)
        finally:
            Event(names[1], executor=e).set()
        first.result(RESULT_TIMEOUT)
    assert log.get(timeout=RESULT_TIMEOUT) == "first stopped"
    assert log.get(batch=True) == []  # neither second nor third ran


def test_a_views_map_that_times_out_cancels_the_call_it_waited_on(cluster, wait_until):
    """As a thread pool's map: the call whose result did not come in time is cancelled with
    the calls after it. Nobody can take its result any more, and it held a worker thread
    until it ended."""
    from dist_client import Event
    e = cluster.executor()
    key, names = f"timed-out-{e.id}", (f"log-{e.id}", f"stop-{e.id}")
    calls = e.get_executor(key=key).map(log_and_wait, ["waited on"], [names[0]], [names[1]],
                                        timeout=1)
    try:
        with pytest.raises(TimeoutError):
            next(calls)
        # (the view's calls are named ``key`` and a suffix of their own)
        wait_until(lambda: not any(str(running).startswith(key)
                                   for keys in e.processing().values() for running in keys),
                   what="the timed-out call to leave its worker")
    finally:
        Event(names[1], executor=e).set()


def test_a_cancelled_futures_exception_raises_cancelled_error(cluster):
    """As concurrent.futures': ``exception()`` of a cancelled future raises, where it
    returned the ``CancelledError`` as if the task had failed with it."""
    e = cluster.executor()
    finished = e.submit(inc, 1, pure=False)
    assert finished.exception(RESULT_TIMEOUT) is None and finished.exception(timeout=0) is None
    future = e.submit(sleep_then, 1, "never", pure=False)
    future.cancel()
    for wait in (0, None):
        with pytest.raises(concurrent.futures.CancelledError):
            future.exception(timeout=wait)


def wait_for_file(path):
    while not os.path.exists(path):
        time.sleep(0.01)
    return "seen"


def test_a_done_callback_that_blocks_holds_up_no_other_future(cluster, tmp_path):
    """Keys settle on the client's I/O thread: a callback run there stopped every other
    future of the executor until it returned. As dask's, callbacks run on a thread of their
    own; one added to a future already done runs at once, here, as concurrent.futures'."""
    e = cluster.executor()
    go, release = tmp_path / "go", threading.Event()
    threads: list[str] = []

    def blocking(future):
        threads.append(threading.current_thread().name)
        release.wait(RESULT_TIMEOUT)

    waiting = e.submit(wait_for_file, str(go))
    waiting.add_done_callback(blocking)
    try:
        go.touch()
        assert waiting.result(timeout=RESULT_TIMEOUT) == "seen"
        assert e.submit(inc, 1, pure=False).result(timeout=RESULT_TIMEOUT) == 2
        assert e.gather(e.map(inc, range(3), pure=False), timeout=RESULT_TIMEOUT) == [1, 2, 3]
    finally:
        release.set()
    waiting.add_done_callback(lambda future: threads.append(threading.current_thread().name))
    assert threads[0] not in ("dist-client-io", threading.current_thread().name)
    assert threads[1] == threading.current_thread().name
