"""The executor that primitives and actor handles use when they are not given one: the
most recent one still running in this process (as dask's ``default_client``); inside a task
with none, one connected to the center of the worker running the task."""
from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from dist_protocol import task_context

_executors: list[weakref.ref] = []
_lock = threading.Lock()
# Inside a task, the executor on the worker's center: ``in_task.get_executor``, which sets
# this as it is imported (it builds an Executor, so this module, which every executor
# imports, cannot import it).
task_executor: Callable[[], Any] | None = None


def register(executor: Any) -> None:
    """A new executor (an ``Executor`` or a started ``AsyncExecutor``): the default from now
    on, while it runs."""
    with _lock:
        _executors[:] = [ref for ref in _executors if ref() is not None]
        _executors.append(weakref.ref(executor))


# The executor of ``as_current()`` blocks, innermost first: of this thread (or asyncio
# task), ahead of the most recent one.
_preferred: contextvars.ContextVar[tuple[weakref.ref, ...]] = contextvars.ContextVar(
    "dist_client_preferred_executors", default=())


@contextlib.contextmanager
def preferred(executor: Any) -> Iterator[Any]:
    """Within the block, in this thread or asyncio task, ``executor`` is the default one
    (``Executor.as_current()``, as dask's ``Client.as_current()``)."""
    token = _preferred.set((weakref.ref(executor), *_preferred.get()))
    try:
        yield executor
    finally:
        _preferred.reset(token)


def enter(executor: Any) -> contextvars.Token:
    """``with executor:`` -- the default one inside the block, as within ``as_current()``;
    ``leave`` with the token it gives, in the same thread or asyncio task."""
    return _preferred.set((weakref.ref(executor), *_preferred.get()))


def leave(token: contextvars.Token) -> None:
    try:
        _preferred.reset(token)
    except ValueError:
        # The block was left in another thread or task than it was entered in: nothing of
        # this one to undo there, and the executor, closed, is skipped where it was entered.
        pass


def made_current() -> Any:
    """The innermost running executor of the ``as_current()`` or ``with`` blocks this
    thread (or asyncio task) is in, or None."""
    for ref in _preferred.get():
        executor = ref()
        if executor is not None and executor.status in ("running", "reconnecting"):
            return executor
    return None


def running(asynchronous: bool | None = None) -> Any:
    with _lock:
        refs = [*_preferred.get(), *reversed(_executors)]
    for ref in refs:
        executor = ref()
        if executor is None or executor.status not in ("running", "reconnecting"):
            continue
        if asynchronous is None or executor.asynchronous == asynchronous:
            return executor
    return None


def running_on(address: str) -> Any:
    """The most recent running executor connected to the center at ``address``, or None."""
    with _lock:
        refs = list(reversed(_executors))
    for ref in refs:
        executor = ref()
        if (executor is not None and executor.status in ("running", "reconnecting")
                and executor.address == address):
            return executor
    return None


def default_executor_or_none() -> Any:
    """The most recently created executor that is still running (inside a task with none,
    one connected to the worker's center), or None."""
    executor = running()
    if executor is not None:
        return executor
    if task_context.current_or_process() is not None and task_executor is not None:
        return task_executor()  # the worker process's executor on its center
    return None


def default_executor() -> Any:
    """The most recently created executor that is still running. Raises ``ValueError``
    when there is none: connect one first (inside a task, one is connected to the worker's
    center)."""
    executor = default_executor_or_none()
    if executor is not None:
        return executor
    raise ValueError(NO_EXECUTOR)


# Opens with dask's words, which code written for dask matches on.
NO_EXECUTOR = ("No clients found (no running Executor in this process)\n"
               "Start an Executor and point it to the center's address\n"
               "  from dist_client import Executor\n"
               "  executor = Executor('ip-addr-of-center:8787')\n"
               "(Executor() starts a local cluster), or pass executor=")


def before_blocking(what: str) -> None:
    """Inside a task run on the worker's event loop, nothing may block: the worker runs the
    task again on a thread of its own (see ``dist_protocol.task_context``)."""
    context = task_context.current()
    if context is not None:
        context.leave_loop(what)


def resolve(executor: Any) -> tuple[Any, Any, bool]:
    """(the client core behind ``executor``, the facade its futures belong to, whether calls
    should be awaitable)."""
    if executor is None:
        executor = default_executor()
    core = getattr(executor, "core", None)
    if core is None:
        raise ValueError(f"not a started executor: {executor!r} (await an AsyncExecutor first)")
    return core, executor, executor.asynchronous


__all__ = ["before_blocking", "default_executor", "default_executor_or_none", "register",
           "resolve", "running", "running_on"]
