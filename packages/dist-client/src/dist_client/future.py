"""Futures: handles on keys whose values stay on the workers."""
from __future__ import annotations

import concurrent.futures
import logging
import time
import types
from collections.abc import Callable, Coroutine, Hashable
from concurrent.futures import CancelledError
from typing import Any, Protocol

from dist_protocol import task_context, timeouts
from dist_protocol.key_names import user_key, wire_key
from dist_protocol.serialize import Payload, deserialize

from . import pickled_futures, remote_traceback
from .actors import held_by_future
from .arguments import given_timeout
from .core.keystate import STATUSES, KeyState
from .core.loop import NotDoneInTime
from .core.waiters import one_settled, settled_async
from .done_callbacks import DONE_CALLBACKS
from .environments import ClusterEnvironments
from .errors import released_error
from .short_tracebacks import without_dist_frames
from .stdlib_futures import StdlibWaitable
from .transfer import load_one

log = logging.getLogger(__name__)


class Cancels(Protocol):
    """What a Future needs of its client's cancels (``core.cancelling.Cancelling``)."""

    def cancel(self, futures: Any, force: bool = False, wait: bool = True,
               reason: str | None = None, msg: str | None = None) -> None: ...
    def retry(self, futures: Any) -> None: ...


class Core(Protocol):
    """What a Future needs of its client's core (``core.client.ClientCore``)."""

    def hold(self, key: str, state: KeyState | None = None) -> KeyState: ...
    def release_handle(self, state: KeyState) -> None: ...
    def drop(self, state: KeyState) -> None: ...
    @property
    def cancelling(self) -> Cancels: ...
    def run(self, coro: Coroutine, timeout: float | None = None) -> Any: ...
    async def call(self, coro: Coroutine) -> Any: ...
    def value_of(self, state: KeyState) -> Coroutine: ...
    def in_forked_child(self) -> bool: ...
    def forked_error(self) -> Exception: ...
    def task_running(self, name: str) -> bool: ...
    def why_late(self) -> str: ...
    id: str
    envs: ClusterEnvironments  # which worker runs which Python


class Future(StdlibWaitable, concurrent.futures.Future):  # type: ignore[misc, override]
    """A key on the cluster. ``result()`` fetches its value from the worker holding it.

    Its value is freed on the workers once the last Future of the key is garbage-collected
    (unless another client or a waiting task needs it). It is a ``concurrent.futures.Future``
    too, so ``asyncio.wrap_future`` and code written for the standard executors accept it.
    """

    __slots__ = ("name", "keystate", "_executor", "_core", "_stdlib_waiters")
    # dask reads a graph's futures as references to their keys (as it does distributed's).
    __dask_future__ = True

    def __init__(self, name: Hashable, executor: Any, state: KeyState | None = None):
        """``name``: the key as the wire names it (``wire_key``); ``executor``: the facade
        (``Executor``, ``AsyncExecutor``) whose ``core`` holds the key; the future keeps it
        alive. A key of another type than a string is named here (``Future(17, executor)``)."""
        self.name: str = name if type(name) is str else wire_key(name)
        self._executor = executor
        self._core: Core = executor.core
        # What the client knows of the key, shared by every Future of it.
        self.keystate = self._core.hold(self.name, state)
        self._stdlib_waiters: list | None = None

    @classmethod
    def of_held(cls, names: list[str], states: list[KeyState], executor: Any) -> list[Future]:
        """Futures of keys their client holds a handle on for each already (``states``, in
        the order of ``names``: ``ClientState.hold_many``), as ``Future(name, executor)``
        makes one: a map's futures made without a call and a pass through the client's lock
        each."""
        core = executor.core
        new = cls.__new__
        made = []
        for name, state in zip(names, states):
            future = new(cls)
            future.name = name
            future._executor = executor
            future._core = core
            future.keystate = state
            future._stdlib_waiters = None
            made.append(future)
        return made

    @classmethod
    def of_held_one(cls, name: str, state: KeyState, executor: Any) -> Future:
        """``of_held`` for one key (a lone submit)."""
        future = cls.__new__(cls)
        future.name = name
        future._executor = executor
        future._core = executor.core
        future.keystate = state
        future._stdlib_waiters = None
        return future

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and getattr(self, "_executor", None) is not None:
            core.drop(self.keystate)

    @property
    def key(self) -> Hashable:
        """The key as the user gave it: ``17``, ``('x', 1)`` or ``'inc-<hex>'``; ``name`` is
        the string the cluster knows it by."""
        return user_key(self.name)

    # -- status ---------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.keystate.status

    @property
    def type(self) -> type | str:
        """The class of the value once the task has finished, as dask's: unpickled here,
        when first read, from what the worker sent. Its name instead (``""`` while
        pending) when the class did not come (an older worker or center, a class defined
        in a function that pickles large, a scattered value) or does not load here (its
        module is not installed in this process, or it holds the Python code of a class
        pickled by value on a worker of another Python minor version)."""
        state = self.keystate
        pickled = state.type_pickled
        if pickled is None:
            return state.type
        try:
            kind = deserialize(Payload("pickle", [pickled]),
                               code=self._core.envs.builds_code_from(state.workers))
        except Exception:  # noqa: BLE001 -- not importable here: the name says what it was
            return state.type
        return kind if isinstance(kind, type) else state.type

    def done(self) -> bool:
        # A handle released while pending never settles for its holder: it is cancelled.
        return self.keystate.done or self._executor is None

    def cancelled(self) -> bool:
        state = self.keystate
        return state.status == "cancelled" or (self._executor is None and not state.done)

    def running(self) -> bool:
        """Whether the task's call runs now on a worker, as ``concurrent.futures`` has it.
        Asked of the workers when called (a round trip through the center): nothing is sent
        when a task starts, so a map pays nothing for this."""
        if self.keystate.status != "pending":
            return False
        return self._core.task_running(self.name)

    def set_running_or_notify_cancel(self) -> bool:
        """``concurrent.futures``' contract for an executor about to run the call: False for
        a cancelled future, True for a pending one (its task runs on the cluster), and
        ``RuntimeError`` for one done, as the standard Future raises."""
        if self.cancelled():
            return False
        if self.done():
            raise RuntimeError(f"Future in unexpected state: {self.key} is {self.status}")
        return True

    def set_result(self, result: Any) -> None:
        raise self._settled_by_its_task("set_result")

    def set_exception(self, exception: BaseException | None) -> None:
        raise self._settled_by_its_task("set_exception")

    def _settled_by_its_task(self, method: str) -> concurrent.futures.InvalidStateError:
        # (the standard Future's own would fail on a property: "property '_state' of
        # 'Future' object has no setter")
        return concurrent.futures.InvalidStateError(
            f"{method}: a dist Future is settled by its task on the cluster only ({self.key} "
            f"is {self.status}); cancel() it, or keep a concurrent.futures.Future of your "
            f"own to settle")

    def _wait(self, timeout: float | None) -> None:
        self._wait_read(given_timeout("timeout", timeout))

    def _wait_read(self, timeout: float | None) -> None:
        """``_wait`` for a timeout ``given_timeout`` has read already."""
        if self.keystate.status != "pending":
            return
        if self._executor is None:  # nothing it waited for would ever come
            raise released_error(self.key)
        if self._core.in_forked_child():
            raise self._core.forked_error()
        with task_context.slot_given_back():
            settled = one_settled(self.keystate, timeout)
        if not settled:
            raise timeouts.TimeoutError(f"{self.key} not done within {timeout} s"
                                         f"{self._core.why_late()}")

    def result(self, timeout: float | None = None) -> Any:
        """The value (fetched from its worker), or the task's exception raised here."""
        try:
            value = self._result(given_timeout("timeout", timeout))
            # An actor's handle made from its future holds it: the actor lives while either
            # does.
            return held_by_future(value, self)
        except BaseException as exc:  # noqa: BLE001 -- raised again, with a shorter traceback
            raise exc.with_traceback(without_dist_frames(exc.__traceback__))  # noqa: B904
        finally:
            self = None  # type: ignore[assignment]  # (see _result: the error's traceback)

    def _result(self, timeout: float | None) -> Any:
        state = self.keystate
        try:
            # Waited for here, as a small value comes with the news that the key is done:
            # then nothing more crosses to the I/O thread.
            deadline = None if timeout is None else time.monotonic() + timeout
            self._wait_read(timeout)
            if state.status != "finished":
                raise state.failure
            small = state.small
            if small is not None:
                return load_one(small)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return self._core.run(self._core.value_of(state), left)
            except NotDoneInTime:
                raise timeouts.TimeoutError(f"{self.key} not done within {timeout} s"
                                            f"{self._core.why_late()}") from None
        finally:
            # The key's state keeps the error, and the error's traceback this frame: were
            # the frame to keep the future, the future would hold its key for ever.
            self = state = None  # type: ignore[assignment]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception, None if it gave a value. A cancelled future raises its
        ``CancelledError``, as concurrent.futures' does: being cancelled is not the task's
        error, and code that reads ``exception() is None`` as "has a value" would otherwise
        take the cancellation for the task's own failure."""
        self._wait(timeout)
        state = self.keystate
        if state.status == "cancelled":
            raise state.failure
        return state.exception

    def traceback(self, timeout: float | None = None) -> types.TracebackType | None:
        """The remote traceback of a failed task, as a traceback object that
        ``traceback.format_tb``/``print_tb``/``extract_tb`` accept (None if it did not fail).
        ``traceback_text()`` gives it as the worker formatted it."""
        text = self.traceback_text(timeout)
        return remote_traceback.build(text) if text else None

    def traceback_text(self, timeout: float | None = None) -> str | None:
        """The remote traceback of a failed task, as text (None if it did not fail); the
        frames of functions sent by value get their file and source line here."""
        self._wait(timeout)
        if self.keystate.status != "error" or not self.keystate.traceback:
            return None
        return remote_traceback.localize(self.keystate.traceback)

    @property
    def executor(self) -> Any:
        """The Executor (or AsyncExecutor) this future belongs to (None once ``release()``d)."""
        return self._executor

    @property
    def client(self) -> Any:
        """dask's name for ``executor``."""
        return self._executor

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        # The key names the value: graphs built on this future get the same keys every time.
        # The executor too, as dask's futures name their client: dask's collections are
        # cached by their token, and a collection unpickled for another executor in this
        # process (a dataset got back) would otherwise be the cached one, whose futures
        # belong to the executor that made it.
        return ("dist_client.Future", self.name, self._core.id)

    def cancel(self, reason: str | None = None, msg: str | None = None,
               force: bool = False) -> bool:
        """Cancel the task unless it is done (True if the future is cancelled), as
        concurrent.futures'; dask's ``reason``, ``msg`` and ``force`` as ``Executor.cancel``
        takes them."""
        if self._executor is None or self.done():
            return self.cancelled()
        self._core.cancelling.cancel([self], force, reason=reason, msg=msg)
        return True

    def retry(self) -> None:
        """Run the task again if it failed (and the failed inputs behind it), as dask's
        ``Future.retry``: pending until it settles again. Nothing happens otherwise."""
        if self._executor is not None:
            self._core.cancelling.retry([self])

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        """Call ``fn(self)`` when done: at once, in this thread, if it is; else, once it
        settles, on the thread of done callbacks (``done_callbacks``), as dask's."""
        if self._executor is None and not self.keystate.done:
            # Released while pending: cancelled for this holder, and its key may never settle.
            try:
                fn(self)
            except Exception:
                log.exception("a done callback raised")
        elif self.done():
            self.keystate.on_done(lambda: fn(self))
        else:
            self.keystate.on_done(lambda: DONE_CALLBACKS.call_soon(fn, self))

    def release(self) -> None:
        """Drop this handle now instead of waiting for garbage collection."""
        # A released handle keeps no executor (and so no reference to its key).
        executor, self._executor = self._executor, None
        if executor is not None:
            self._core.release_handle(self.keystate)

    def __await__(self):
        return self._async_result().__await__()

    async def _async_result(self) -> Any:
        """The value, awaited on the caller's event loop (the I/O loop fetches it)."""
        try:
            value = await self._async_value()
            return held_by_future(value, self)
        finally:
            self = None  # type: ignore[assignment]  # (as in result())

    async def _async_value(self) -> Any:
        state = self.keystate
        try:
            if self._executor is None and not state.done:
                raise released_error(self.key)
            await settled_async([state])  # on this loop; a small value needs nothing more
            if state.status != "finished":
                raise state.failure
            small = state.small
            if small is not None:
                return load_one(small)
            return await self._core.call(self._core.value_of(state))
        finally:
            self = state = None  # type: ignore[assignment]  # (as in result())

    def __repr__(self) -> str:
        return f"<Future: status: {self.status}, key: {self.key}>"

    def _repr_html_(self) -> str:
        return f"<b>Future</b>: status: {self.status}, key: {self.key}"

    def __reduce__(self):
        # Hidden inside another object, it travels as its key (see pickled_futures.py).
        return pickled_futures.reduce(self)


__all__ = ["Future", "KeyState", "CancelledError", "STATUSES"]
