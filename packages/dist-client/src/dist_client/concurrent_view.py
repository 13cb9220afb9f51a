"""A strict ``concurrent.futures.Executor`` over a client: ``Executor.get_executor()``."""
from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

from .core.client import ClientCore
from .core.waiters import settled
from .errors import ExecutorClosedError
from .future import Future
from .tasks import TaskBuilder


class ConcurrentView(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` over an Executor.

    Each call runs (``pure=False``); every keyword of ``submit``/``map`` goes to the function
    (dist's options are given once, to ``get_executor(**options)``); ``map`` yields results
    in order; a submitted call runs to the end even if nobody keeps its future, as in a thread
    pool. ``shutdown`` refuses new work and waits for (or cancels) this view's work only.
    """

    def __init__(self, executor: Any, submit_options: dict):
        # The view keeps its Executor open: ``Executor(address).get_executor()`` is a whole
        # executor, though nothing else holds the Executor. (Each future holds it too, so
        # work still running when the view is dropped ends normally.)
        self.executor = executor
        self._core: ClientCore = executor.core
        options = dict(submit_options)
        self._key = options.pop("key", None)
        self._pure = options.pop("pure", False)
        self._options = TaskBuilder.options(**options)
        self._lock = threading.Lock()
        self._running: set[Future] = set()  # this view's futures not done yet
        self._shut = False

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
        future = self._core.submit_call(fn, args, kwargs, self._key, self._pure,
                                             self._options, stacklevel=3)
        return self._track(future)

    def map(self, fn, *iterables, timeout: float | None = None, chunksize: int = 1,
            buffersize: int | None = None) -> Iterator[Any]:
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        self._refuse_if_shut()
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self._track(f) for f in self._core.submit_map(
            fn, iterables, {}, self._key, self._pure, self._options, stacklevel=3)]

        def results() -> Iterator[Any]:
            try:
                futures.reverse()  # pop() from the end keeps no reference to yielded ones
                while futures:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"map: results not ready within {timeout} s")
                    yield futures.pop().result(left)
            finally:
                for future in futures:
                    future.cancel()
        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shut = True
        with self._lock:
            running = list(self._running)
        if cancel_futures:
            self._core.cancel_unstarted(running)
        if wait:
            settled([future.keystate for future in running])
