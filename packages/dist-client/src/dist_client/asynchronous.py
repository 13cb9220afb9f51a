"""The Executor for asyncio code, and a strict ``concurrent.futures`` view of it."""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

from .future import Future
from .packing import collect_futures, rebuild


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

    async def gather(self, futures: Any, errors: str = "raise") -> Any:
        if isinstance(futures, Future):
            return await futures
        found: list[Future] = []
        collect_futures(futures, found)
        await self.wait_done(found)
        bad = [f for f in found if f.status != "finished"]
        if bad and errors == "raise":
            raise bad[0].exception()
        keys = list(dict.fromkeys(f.key for f in found if f.status == "finished"))
        values = await self.executor._gather_keys_async(keys, many=True) if keys else {}
        if bad and isinstance(futures, list):
            skipped = {f.key for f in bad}
            futures = [f for f in futures if not (isinstance(f, Future) and f.key in skipped)]
        return rebuild(futures, values)

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

    async def wait_for_workers(self, n_workers: int = 1, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.executor.wait_for_workers, n_workers, timeout)

    def compute(self, collections: Any) -> Any:
        """Futures (awaitable) for dask collections, as ``Executor.compute``."""
        return self.executor.compute(collections)

    def __repr__(self) -> str:
        state = "not started" if self.executor is None else self.executor.status
        return f"<AsyncExecutor: {state}>"


class ConcurrentView(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` over an Executor: each call runs (``pure=False``),
    ``map`` yields results in order, ``shutdown`` waits for this view's futures only."""

    def __init__(self, executor, submit_options: dict):
        self._executor = executor
        self._options = {"pure": False, **submit_options}
        self._futures: list[Future] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = self._executor.submit(fn, *args, **self._options, **kwargs)
        self._futures.append(future)
        return future

    def map(self, fn, *iterables, timeout: float | None = None, chunksize: int = 1,
            buffersize: int | None = None) -> Iterator[Any]:
        futures = self._executor.map(fn, *iterables, **self._options)
        deadline = None if timeout is None else time.monotonic() + timeout

        def results() -> Iterator[Any]:
            for future in futures:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                yield future.result(left)
        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        futures, self._futures = self._futures, []
        if cancel_futures:
            self._executor.cancel([f for f in futures if not f.done()])
        elif wait:
            for future in futures:
                future._keystate.wait()
