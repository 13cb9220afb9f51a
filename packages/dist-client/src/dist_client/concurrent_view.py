"""A strict ``concurrent.futures.Executor`` over a client: ``Executor.get_executor()``."""
from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from dist_protocol import timeouts
from dist_protocol.messages import Submit

from .core.client import ClientCore
from .core.waiters import settled
from .errors import ExecutorClosedError
from .future import Future
from .keys import given_key, task_key
from .pickled_futures import pin
from .tasks import TaskBuilder, function_holds_code, warn_if_large


# What ``get_executor(**options)`` gives every call of the view, besides ``max_workers``.
VIEW_OPTIONS = ("workers", "resources", "priority", "retries", "allow_other_workers", "key",
                "pure")
# Keywords of the standard library's pools that a view of a cluster has no use for.
POOL_KEYWORDS = ("initializer", "initargs", "thread_name_prefix", "mp_context",
                 "max_tasks_per_child")


def _refuse_unknown(options: dict) -> None:
    unknown = [name for name in options if name not in VIEW_OPTIONS]
    if not unknown:
        return
    message = (f"get_executor() got {', '.join(map(repr, unknown))}: it takes max_workers and "
               f"the task options every call of the view gets ({', '.join(VIEW_OPTIONS)})")
    if any(name in POOL_KEYWORDS for name in unknown):
        message += ("; a thread or process pool's keywords have no counterpart here: to "
                    "prepare every worker before tasks run there, register a worker plugin "
                    "(Executor.register_plugin) or call Executor.run")
    raise TypeError(message)


def _result_else_cancel(future: Future, timeout: float | None) -> Any:
    """The call's result. A call whose wait ends without one (the map's timeout, an
    interrupt) is cancelled as the map's later calls are, as a thread pool's map does:
    nobody can take its result any more, so it would hold a worker for nothing."""
    try:
        return future.result(timeout)
    except BaseException:
        if not future.done():
            future.cancel()
        raise


class ConcurrentView(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` over an Executor.

    Each call runs (``pure=False``); every keyword of ``submit``/``map`` goes to the function
    (dist's options are given once, to ``get_executor(**options)``); ``map`` yields results
    in order; a submitted call runs to the end even if nobody keeps its future, as in a thread
    pool. With ``max_workers``, at most that many of the view's calls are on the cluster at
    once; the others wait in the client, pending, as in a pool of that many threads.
    ``shutdown`` refuses new work and waits for (or cancels) this view's work only.
    """

    def __init__(self, executor: Any, submit_options: dict, max_workers: int | None = None):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        # The view keeps its Executor open: ``Executor(address).get_executor()`` is a whole
        # executor, though nothing else holds the Executor. (Each future holds it too, so
        # work still running when the view is dropped ends normally.)
        self.executor = executor
        self._core: ClientCore = executor.core
        options = dict(submit_options)
        _refuse_unknown(options)
        self._key = options.pop("key", None)
        self._pure = options.pop("pure", False)
        self._options = TaskBuilder.options(**options)
        self._lock = threading.Lock()
        self._running: set[Future] = set()  # this view's futures not done yet
        self._shut = False
        self.max_workers = max_workers
        # Calls held back by max_workers: (future, task, arguments kept alive until sent).
        self._waiting: deque[tuple[Future, Any, tuple]] = deque()
        self._on_cluster = 0

    def _track(self, future: Future) -> Future:
        with self._lock:
            self._running.add(future)

        def forget() -> None:
            with self._lock:
                self._running.discard(future)
        future.keystate.on_done(forget)
        return future

    def _refuse_if_shut(self) -> None:
        if self._shut:
            raise ExecutorClosedError("cannot schedule new futures after shutdown")

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self._refuse_if_shut()
        if self.max_workers is not None:
            return self._track(self._submit_limited(fn, args, kwargs))
        future = self._core.submitter.submit_call(fn, args, kwargs, self._key, self._pure,
                                                  self._options, stacklevel=3)
        return self._track(future)

    # -- max_workers ------------------------------------------------------------------------------
    def _submit_limited(self, fn, args: tuple, kwargs: dict) -> Future:
        """The call's future at once; its task goes to the center when fewer than
        ``max_workers`` of this view's calls are there."""
        core = self._core
        if not callable(fn):
            raise TypeError(f"submit needs a callable, got {type(fn).__name__}")
        if not core.accepting:
            raise ExecutorClosedError("cannot schedule new futures after shutdown")
        submitter = core.submitter
        function = submitter.function_payload(fn)
        core.check_pickled_code(self._options, code=function_holds_code(function))
        key = task_key(fn, args, kwargs, self._pure) if not self._key else given_key(self._key)
        pickled: list = []  # futures hidden inside the arguments
        task = submitter.task(key, function, args, kwargs, self._options, fn, pickled)
        warn_if_large(fn, [task], 4)
        future = core.future(key)
        pickled += submitter.futures_in_function(fn)
        if pickled:
            pin(future, pickled)
        with self._lock:
            self._waiting.append((future, task, args))
        self._send_waiting()
        return future

    def _send_waiting(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self._on_cluster >= (self.max_workers or 0):
                    return
                future, task, _ = self._waiting.popleft()
                if future.done():  # cancelled while it waited
                    continue
                self._on_cluster += 1
            try:
                self._core.send(Submit(tasks=[task], small_values=True))
            except BaseException as exc:  # noqa: BLE001 -- the executor closed meanwhile
                future.keystate.fail(exc)
            future.keystate.on_done(self._slot_freed)

    def _slot_freed(self) -> None:
        with self._lock:
            self._on_cluster -= 1
        self._send_waiting()

    def _cancel_waiting(self) -> list[Future]:
        with self._lock:
            waiting, self._waiting = list(self._waiting), deque()
        futures = [future for future, _, _ in waiting]
        self._core.cancelling.cancel(futures)
        return futures

    # -- the rest of concurrent.futures.Executor --------------------------------------------------
    def map(self, fn, *iterables, timeout: float | None = None, chunksize: int = 1,
            buffersize: int | None = None) -> Iterator[Any]:
        """Results of ``fn`` over ``zip(*iterables)``, in order. With ``buffersize`` (as
        Python 3.14's executors take it), the inputs are read as results are taken: at
        most that many calls are submitted and not yet yielded, so an endless iterable
        works; without it, every call is submitted now, in messages of many."""
        if buffersize is not None and (isinstance(buffersize, bool)
                                       or not isinstance(buffersize, int)):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        self._refuse_if_shut()
        deadline = None if timeout is None else time.monotonic() + timeout
        calls = zip(*iterables)
        if buffersize is not None:
            futures = [self.submit(fn, *args) for args in itertools.islice(calls, buffersize)]
        elif self.max_workers is not None:
            futures = [self.submit(fn, *args) for args in calls]
        else:
            futures = [self._track(f) for f in self._core.submitter.submit_map(
                fn, iterables, {}, self._key, self._pure, self._options, stacklevel=3)]
        pending = deque(futures)
        del futures

        def results() -> Iterator[Any]:
            try:
                while pending:
                    if buffersize is not None and not self._shut:
                        args = next(calls, None)
                        if args is not None:
                            pending.append(self.submit(fn, *args))
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise timeouts.TimeoutError(f"map: results not ready within {timeout} s")
                    # (no reference kept to a yielded one)
                    yield _result_else_cancel(pending.popleft(), left)
            finally:
                for future in pending:
                    future.cancel()
        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shut = True
        if cancel_futures:
            self._cancel_waiting()
        with self._lock:
            running = list(self._running)
        if cancel_futures:
            self._core.cancelling.cancel_unstarted(running)
        if wait:
            settled([future.keystate for future in running])
