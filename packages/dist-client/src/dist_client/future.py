"""Futures: handles on keys whose values stay on the workers."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any

from dist_protocol.serialize import Payload, deserialize

from . import remote_traceback

if TYPE_CHECKING:
    from .executor import Executor

log = logging.getLogger("dist_client")

STATUSES = ("pending", "finished", "error", "lost", "cancelled")
_NO_VALUE = object()


class KeyState:
    """What the client knows of one key; every Future of that key shares it."""

    __slots__ = ("key", "status", "exception", "traceback", "type", "nbytes", "workers",
                 "small_value", "callbacks", "prefetch", "_condition", "_lock")

    def __init__(self, key: str):
        self.key = key
        self.status = "pending"
        self.exception: BaseException | None = None
        self.traceback = ""
        self.type = ""
        self.nbytes = 0
        self.workers: list[str] = []
        # A small value as the center passed it on (serialized): read without a fetch.
        self.small_value: Payload | None = None
        self.callbacks: list[Callable[[], object]] = []
        # Set by a result() that is waiting: the I/O thread fetches the value as soon as the
        # key is in memory, instead of waiting for the waiting thread to wake and ask.
        self.prefetch: concurrent.futures.Future | None = None
        self._lock = threading.RLock()  # re-entered when concurrent.futures.wait installs waiters
        self._condition: threading.Condition | None = None  # made by the first waiter

    @property
    def condition(self) -> threading.Condition:
        """Held by ``wait()`` here and by concurrent.futures.wait/as_completed while they check
        the status and install their waiters."""
        with self._lock:
            if self._condition is None:
                self._condition = threading.Condition(self._lock)
            return self._condition

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until settled; False on timeout."""
        if self.status != "pending":
            return True
        condition = self.condition
        with condition:
            return condition.wait_for(lambda: self.status != "pending", timeout)

    def _settle(self, status: str) -> None:
        with self._lock:
            self.status = status
            if self._condition is not None:
                self._condition.notify_all()
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            _call_safely(callback)

    def finish(self, nbytes: int, type_: str, workers: list[str] | None,
               small_value: Payload | None = None) -> None:
        self.nbytes, self.type = nbytes, type_
        if workers:
            self.workers = list(workers)
        self.small_value = small_value
        self.exception = None
        self._settle("finished")

    @property
    def failure(self) -> BaseException:
        """The exception of a key that is not finished (pending reads as not done yet)."""
        if self.exception is not None:
            return self.exception
        return concurrent.futures.InvalidStateError(f"{self.key} is {self.status}")

    def fail(self, exception: BaseException, traceback: str = "", status: str = "error") -> None:
        self.exception, self.traceback = exception, traceback
        self.workers = []
        self.small_value = None
        self._settle(status)
        with self._lock:
            prefetch, self.prefetch = self.prefetch, None
        if prefetch is not None and not prefetch.done():
            prefetch.set_exception(exception)

    def prefetch_waiter(self) -> concurrent.futures.Future | None:
        """The waiter of a ``result()`` that wants the value fetched as soon as it is in
        memory (None if nobody waits so)."""
        with self._lock:
            return self.prefetch

    def recomputing(self) -> None:
        """The center lost the data and computes it again: pending until it is back."""
        with self._lock:
            if self.status != "finished":
                return
            self.status = "pending"
            self.workers = []
            self.small_value = None

    def reset(self) -> None:
        """Back to pending (e.g. resubmitted after a failure)."""
        with self._lock:
            self.status = "pending"
            self.exception = None
            self.small_value = None

    def on_done(self, callback: Callable[[], object]) -> None:
        with self._lock:
            if self.status == "pending":
                self.callbacks.append(callback)
                return
        try:  # already done: called here, in the caller's thread, as concurrent.futures does
            callback()
        except Exception:
            log.exception("a done callback raised")


def _call_safely(callback: Callable[[], object]) -> None:
    """Run a done callback as a key settles; what it raises is logged, as concurrent.futures
    does. Keys settle on the client's I/O thread: not even SystemExit may stop it."""
    try:
        callback()
    except BaseException:
        log.exception("a done callback raised")


class Future(concurrent.futures.Future):
    """A key on the cluster. ``result()`` fetches its value from the worker holding it.

    Its value is freed on the workers once the last Future of the key is garbage-collected
    (unless another client or a waiting task needs it). It is a ``concurrent.futures.Future``
    too, so ``asyncio.wrap_future`` and code written for the standard executors accept it.
    """

    __slots__ = ("key", "_keystate", "_executor", "_cf_waiters")
    # dask reads a graph's futures as references to their keys (as it does distributed's).
    __dask_future__ = True

    def __init__(self, key: str, executor: Executor, state: KeyState | None = None):
        self.key = key
        self._executor = executor
        self._keystate = executor._hold(key, state)
        self._cf_waiters: list | None = None

    def __del__(self) -> None:
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor._unhold(self.key)

    # -- status ---------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._keystate.status

    @property
    def type(self) -> str:
        return self._keystate.type

    def done(self) -> bool:
        return self._keystate.done

    def cancelled(self) -> bool:
        return self._keystate.status == "cancelled"

    def running(self) -> bool:
        return False  # the center knows; asking it for each call would be a round trip

    def set_running_or_notify_cancel(self) -> bool:
        return not self.cancelled()

    def _wait(self, timeout: float | None) -> None:
        if not self._keystate.wait(timeout):
            raise TimeoutError(f"{self.key} not done within {timeout} s")

    def result(self, timeout: float | None = None) -> Any:
        """The value (fetched from its worker), or the task's exception raised here."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self._keystate
        with state._lock:  # the I/O thread reads ``prefetch`` after settling, under this lock
            prefetch = state.prefetch
            if prefetch is None and not state.done:
                prefetch = state.prefetch = concurrent.futures.Future()
        if prefetch is not None:
            # One wake-up: the I/O thread resolves this with the value itself, or the error.
            try:
                value = prefetch.result(timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"{self.key} not done within {timeout} s") from None
            except Exception:  # noqa: BLE001 -- checked against the state below
                value = _NO_VALUE
            if state.prefetch is prefetch:
                state.prefetch = None
            if value is not _NO_VALUE:
                return value
        self._wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if state.status != "finished":
            raise state.failure
        small = state.small_value
        if small is not None:
            return deserialize(small)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._executor._gather_keys([self.key], timeout=left)[self.key]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._keystate.exception

    def traceback(self, timeout: float | None = None) -> types.TracebackType | None:
        """The remote traceback of a failed task, as a traceback object that
        ``traceback.format_tb``/``print_tb``/``extract_tb`` accept (None if it did not fail).
        ``traceback_text()`` gives it as the worker formatted it."""
        text = self.traceback_text(timeout)
        return remote_traceback.build(text) if text else None

    def traceback_text(self, timeout: float | None = None) -> str | None:
        """The remote traceback of a failed task, as text (None if it did not fail)."""
        self._wait(timeout)
        return self._keystate.traceback or None if self._keystate.status == "error" else None

    @property
    def executor(self) -> Executor | None:
        """The Executor this future belongs to (None once ``release()``d)."""
        return self._executor

    def __dask_tokenize__(self) -> tuple[str, str]:
        # The key names the value: graphs built on this future get the same keys every time.
        return ("dist_client.Future", self.key)

    def cancel(self) -> bool:
        if self._executor is None or self.done():
            return self.cancelled()
        self._executor.cancel([self])
        return True

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        """Call ``fn(self)`` when done (from the client's I/O thread)."""
        self._keystate.on_done(lambda: fn(self))

    def release(self) -> None:
        """Drop this handle now instead of waiting for garbage collection."""
        # A released handle keeps no executor (and so no reference to its key).
        executor, self._executor = self._executor, None  # type: ignore[assignment]
        if executor is not None:
            executor._unhold(self.key)

    # -- what concurrent.futures.wait and as_completed read of a Future ------------------------
    # concurrent.futures.wait and as_completed read these attributes of its own Future class;
    # here they are views of the key's state, hence properties where it has attributes.
    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        return self._keystate.condition

    @property
    def _state(self) -> str:  # type: ignore[override]
        status = self._keystate.status
        if status == "pending":
            return concurrent.futures._base.PENDING
        if status == "cancelled":
            return concurrent.futures._base.CANCELLED_AND_NOTIFIED
        return concurrent.futures._base.FINISHED

    @property
    def _waiters(self) -> list:  # type: ignore[override]
        if self._cf_waiters is None:
            self._cf_waiters = []
            self._keystate.on_done(self._notify_cf_waiters)
        return self._cf_waiters

    def _notify_cf_waiters(self) -> None:
        status = self._keystate.status
        for waiter in list(self._cf_waiters or ()):
            if status == "finished":
                waiter.add_result(self)
            elif status == "cancelled":
                waiter.add_cancelled(self)
            else:
                waiter.add_exception(self)

    def __await__(self):
        return self._async_result().__await__()

    async def _async_result(self) -> Any:
        if not self.done():
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            def wake() -> None:
                if not waiter.done():
                    waiter.set_result(None)
            self._keystate.on_done(lambda: loop.call_soon_threadsafe(wake))
            await waiter
        if self._keystate.status != "finished":
            raise self._keystate.failure
        return await self._executor._gather_keys_async([self.key])

    def __repr__(self) -> str:
        return f"<Future: status: {self.status}, key: {self.key}>"

    def _repr_html_(self) -> str:
        return f"<b>Future</b>: status: {self.status}, key: {self.key}"

    def __reduce__(self):
        raise TypeError("a Future cannot be pickled; pass it to submit()/map() as an argument "
                        "and the worker receives its value")


__all__ = ["Future", "KeyState", "CancelledError", "STATUSES"]
