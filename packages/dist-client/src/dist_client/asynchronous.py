"""The Executor for asyncio code, and a strict ``concurrent.futures`` view of it."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

from .errors import ExecutorClosedError
from .future import Future
from .packing import collect_futures, without_missing
from .tasks import TaskBuilder


class AsyncExecutor:
    """``e = await AsyncExecutor(address)`` (or ``await Executor(address, asynchronous=True)``).

    ``submit``/``map`` return Futures you can ``await``; ``gather``, ``scatter``, ``close`` and
    the cluster calls are coroutines. The I/O runs on the Executor's own thread, so nothing
    here blocks the caller's event loop.
    """

    def __init__(self, *args, **kwargs):
        self._args, self._kwargs = args, kwargs
        self.executor = None

    def __await__(self):
        return self._start().__await__()

    async def _start(self) -> AsyncExecutor:
        if self.executor is None:
            from .executor import Executor
            self.executor = await asyncio.to_thread(Executor, *self._args, **self._kwargs)
        return self

    async def __aenter__(self) -> AsyncExecutor:
        return await self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @property
    def address(self) -> str:
        return self.executor.address

    def submit(self, func, *args, **kwargs) -> Future:
        return self.executor.submit(func, *args, **kwargs)

    def map(self, func, *iterables, **kwargs) -> list[Future]:
        return self.executor.map(func, *iterables, **kwargs)

    async def wait_done(self, futures: list[Future]) -> None:
        pending = [f for f in futures if not f.done()]
        if not pending:
            return
        loop = asyncio.get_running_loop()
        all_done = asyncio.Event()
        remaining = [len(pending)]

        def one_done() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                all_done.set()

        for future in pending:
            future._keystate.on_done(lambda: loop.call_soon_threadsafe(one_done))
        await all_done.wait()

    async def gather(self, futures: Any, errors: str = "raise",
                     timeout: float | None = None) -> Any:
        """As ``Executor.gather``; ``timeout`` raises ``TimeoutError`` when the values are
        not all here in time (the futures go on)."""
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        return await asyncio.wait_for(self._gather(futures, errors), timeout)

    async def _gather(self, futures: Any, errors: str) -> Any:
        if isinstance(futures, Future):
            return await futures
        found: list[Future] = []
        collect_futures(futures, found)
        await self.wait_done(found)
        bad = [f for f in found if f.status != "finished"]
        if bad and errors == "raise":
            raise bad[0]._keystate.failure
        keys = list(dict.fromkeys(f.key for f in found if f.status == "finished"))
        values = await self.executor._gather_keys_async(keys, True, errors == "skip") \
            if keys else {}
        return without_missing(futures, values)

    async def scatter(self, data: Any, **kwargs) -> Any:
        return await asyncio.to_thread(self.executor.scatter, data, **kwargs)

    async def cancel(self, futures: Any) -> None:
        self.executor.cancel(futures)

    async def close(self) -> None:
        if self.executor is not None:
            await asyncio.to_thread(self.executor.close)

    async def restart(self, **kwargs) -> None:
        await asyncio.to_thread(self.executor.restart, **kwargs)

    async def replicate(self, futures: Any, **kwargs) -> None:
        await asyncio.to_thread(self.executor.replicate, futures, **kwargs)

    async def run(self, func, *args, **kwargs) -> dict[str, Any]:
        return await asyncio.to_thread(self.executor.run, func, *args, **kwargs)

    async def who_has(self, futures: Any = None) -> dict[str, list[str]]:
        return await asyncio.to_thread(self.executor.who_has, futures)

    async def has_what(self) -> dict[str, list[str]]:
        return await asyncio.to_thread(self.executor.has_what)

    async def ncores(self) -> dict[str, int]:
        return await asyncio.to_thread(self.executor.ncores)

    async def versions(self, check: bool = False) -> dict[str, Any]:
        return await asyncio.to_thread(self.executor.versions, check)

    async def wait_for_workers(self, n_workers: int = 1, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.executor.wait_for_workers, n_workers, timeout)

    def compute(self, collections: Any) -> Any:
        """Futures (awaitable) for dask collections, as ``Executor.compute``."""
        return self.executor.compute(collections)

    def __repr__(self) -> str:
        state = "not started" if self.executor is None else self.executor.status
        return f"<AsyncExecutor: {state}>"


class ConcurrentView(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` over an Executor.

    Each call runs (``pure=False``); every keyword of ``submit``/``map`` goes to the function
    (dist's options are given once, to ``get_executor(**options)``); ``map`` yields results
    in order; a submitted call runs to the end even if nobody keeps its future, as in a thread
    pool. ``shutdown`` refuses new work and waits for (or cancels) this view's work only.
    """

    def __init__(self, executor, submit_options: dict):
        self._executor = executor
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

        def settled() -> None:
            with self._lock:
                self._running.discard(future)
        future._keystate.on_done(settled)
        return future

    def _refuse_if_shut(self) -> None:
        if self._shut:
            raise ExecutorClosedError("cannot schedule new futures after shutdown")

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self._refuse_if_shut()
        future = self._executor._submit_call(fn, args, kwargs, self._key, self._pure,
                                             self._options, stacklevel=3)
        return self._track(future)

    def map(self, fn, *iterables, timeout: float | None = None, chunksize: int = 1,
            buffersize: int | None = None) -> Iterator[Any]:
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        self._refuse_if_shut()
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self._track(f) for f in self._executor._map_calls(
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
            self._executor.cancel_unstarted(running)
        if wait:
            for future in running:
                future._keystate.wait()
