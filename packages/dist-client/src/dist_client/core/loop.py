"""The client's I/O thread: one event loop (uvloop when installed) behind a blocking API."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any

from dist_protocol import timeouts
from dist_protocol.comm import new_event_loop


class NotDoneInTime(timeouts.TimeoutError):
    """``LoopThread.run`` waited ``timeout`` seconds: the coroutine is cancelled."""


class _Raised:
    """An exception that must not unwind the I/O loop (``SystemExit`` from user code run
    there, say), carried to the caller to be raised in its own thread."""

    __slots__ = ("exception",)

    def __init__(self, exception: BaseException):
        self.exception = exception


async def _guarded(coro: Coroutine) -> Any:
    try:
        return await coro
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:  # noqa: BLE001 -- raised in the caller's thread instead
        return _Raised(exc)


def _unwrap(result: Any) -> Any:
    if isinstance(result, _Raised):
        raise result.exception
    return result


class LoopThread:
    def __init__(self, name: str = "dist-client-io"):
        self.loop = new_event_loop()
        self._thread: threading.Thread | None = threading.Thread(target=self._run, name=name,
                                                                  daemon=True)
        self._thread.start()
        # Asked on every submit and release: a number compared is cheaper than the Thread.
        self._ident: int | None = self._thread.ident

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                self._close_loop()
            finally:
                self._ident = None  # (a thread started later may be given the same number)

    def _close_loop(self) -> None:
        """Cancel what is left and close the loop, so its selector and wake-up pipe go too."""
        loop = self.loop
        leftover = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    @property
    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._ident

    def run(self, coro: Coroutine, timeout: float | None = None) -> Any:
        """Run ``coro`` on the I/O thread and wait for its result here."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("cannot block the client's I/O thread (called from a done "
                               "callback?); use the asynchronous API there")
        future = asyncio.run_coroutine_threadsafe(_guarded(coro), self.loop)
        try:
            return _unwrap(future.result(timeout))
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the coroutine's own TimeoutError
            future.cancel()
            raise NotDoneInTime(f"not done within {timeout} s") from None

    async def run_async(self, coro: Coroutine) -> Any:
        """Await ``coro``, run on the I/O thread, from another event loop: no thread in
        between. Cancelling this await cancels it there."""
        if self.in_loop_thread:
            return await coro
        return _unwrap(await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(_guarded(coro), self.loop)))

    def call(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        thread = self._thread
        if thread is not None and not self.in_loop_thread:
            thread.join(5)
            if not thread.is_alive():
                # Dropped once joined: a closed client may wait in a reference cycle for the
                # collector, and its ended Thread with it, which test.support's thread check
                # on Python 3.10 (a set of Thread objects compared) reads as a thread left
                # behind, forcing a full collection after every test.
                self._thread = None
