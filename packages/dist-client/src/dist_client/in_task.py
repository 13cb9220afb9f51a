"""Tasks that submit tasks: an executor for the cluster a task runs on, ``secede`` and
``rejoin``, as dask's ``get_client``/``worker_client``/``secede``/``rejoin``; and
``get_worker()``, what a task may know of the worker running it.

The worker tells the task where its center is, with which token and TLS settings (a
``dist_protocol.task_context.TaskContext`` for the running thread); this module reads it, so
no address is passed and the client does not import the worker. Every task of a worker
process shares one executor: one connection to the center, not one per task. The futures a
task makes are held by that executor, and released like any future once nothing refers to
them (the task returned or failed); a worker that dies takes the connection, and so every
key its tasks held, with it.

A task that waits on futures it submitted gives its thread back meanwhile (``secede``), or a
cluster whose every thread runs such a waiting task would wait for ever: ``worker_executor()``
secedes on entry and rejoins on exit.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dist_protocol import task_context
from dist_protocol.addresses import format_address, parse_address
from dist_protocol.task_context import TaskContext, WorkerInfo

from . import current, shutdown, task_executors
from .arguments import duration

if TYPE_CHECKING:
    from .executor import Executor


def _context(what: str, any_thread: bool = False) -> TaskContext:
    """The running task's context; ``any_thread``: also, in a worker's process, in a thread
    a task started (which has no thread slot of its own to give back)."""
    context = task_context.current_or_process() if any_thread else task_context.current()
    if context is None:
        raise ValueError(f"{what} is for code running in a task on a dist worker; elsewhere, "
                         "connect with Executor(address)")
    return context


def get_executor(timeout: float = 10.0) -> Executor:
    """The executor of the cluster this task runs on (shared by the worker's tasks).

    It does not give the task's thread back: a task that waits on what it submits should use
    ``worker_executor()``, or call ``secede()`` before waiting and ``rejoin()`` after.
    """
    from .executor import Executor

    context = _context("get_executor()", any_thread=True)
    context.leave_loop("get_executor()")
    where = (context.center, context.token)
    with task_executors.lock:
        executor = task_executors.by_cluster.get(where)
        if executor is None or executor.status in ("closing", "closed"):
            executor = Executor(context.center, token=context.token, timeout=timeout,
                                tls_context=context.ssl_context,
                                name=f"tasks-on-{context.worker}-{uuid.uuid4().hex[:8]}")
            shutdown.untrack(executor.core)
            task_executors.by_cluster[where] = executor
    return executor


def get_worker() -> WorkerInfo:
    """The worker running this task, read-only, as dask's ``get_worker()``: ``address``,
    ``name``, ``id``, ``nthreads``, ``memory_limit`` (bytes, None without a limit),
    ``local_directory``, and ``data``: a mapping the worker's tasks share to keep things
    across tasks there (a loaded model, say). ``data`` starts empty and holds only what tasks
    put in it -- not the worker's stored results, which a task gets by taking futures as
    arguments. ``ValueError`` outside a task."""
    context = task_context.current_or_process()
    if context is None:
        raise ValueError("get_worker() is for code running in a task on a dist worker; no "
                         "task is running in this thread (to ask about the workers from a "
                         "client, use Executor.scheduler_info())")
    if context.about_worker is None:
        raise ValueError(f"get_worker(): the worker at {context.worker} is of an older release "
                         "and does not describe itself to its tasks")
    return context.about_worker


def _log_event(topic, msg) -> None:
    get_executor().log_event(topic, msg)


task_context.set_event_logger(_log_event)


def secede() -> None:
    """Give this task's thread slot back to the worker, which may run another task meanwhile
    (call it before waiting on futures); ``rejoin()`` takes one back."""
    _context("secede()").secede()


def rejoin() -> None:
    """Take a thread slot back after ``secede()``, waiting until the worker has one free."""
    _context("rejoin()").rejoin()


@contextlib.contextmanager
def worker_executor(timeout: float = 10.0, separate_thread: bool = True) -> Iterator[Executor]:
    """``with worker_executor() as e:`` -- the cluster's executor, with this task's thread
    given back while inside (``separate_thread=False`` keeps it)."""
    executor = get_executor(timeout)
    if separate_thread:
        secede()
    try:
        yield executor
    finally:
        if separate_thread:
            rejoin()


def get_client(address: str | None = None, timeout: float | str | None = None,
               resolve_address: bool = True) -> Executor:
    """dask's ``get_client``, for code written for dask: inside a task, the executor of the
    task's cluster (``get_executor()``); elsewhere, or for another ``address``, the current
    executor connected there, else a new one to ``address``. ``ValueError`` outside a task
    with no executor running and no address. ``timeout``: of connecting, seconds or dask's
    text ("10s"); ``resolve_address`` is taken for dask's sake (addresses are compared as
    written, ``tcp://`` aside)."""
    seconds = 10.0 if timeout is None else duration("timeout", timeout)
    wanted = None if address is None else _plain(address)
    context = task_context.current_or_process()
    if context is not None and (wanted is None or wanted == _plain(context.center)):
        return get_executor(seconds)
    executor = current.default_executor_or_none()
    if executor is not None and (wanted is None or wanted == _plain(executor.address)):
        return executor
    if address is None:
        raise ValueError(current.NO_EXECUTOR)
    from .executor import Executor
    return Executor(address, timeout=seconds)


def _plain(address: str) -> str:
    """``address`` as the executors write theirs: ``tcp://`` is the default scheme."""
    scheme, host, port = parse_address(address)
    return format_address(host, port, scheme)


@contextlib.contextmanager
def worker_client(timeout: float | str | None = None,
                  separate_thread: bool = True) -> Iterator[Executor]:
    """dask's ``worker_client``: ``worker_executor()`` (the task's cluster's executor, with
    the task's thread given back inside unless ``separate_thread=False``); ``timeout`` as
    dask writes it, seconds or text."""
    _context("worker_client()", any_thread=True)
    with worker_executor(10.0 if timeout is None else duration("timeout", timeout),
                         separate_thread) as executor:
        yield executor


current.task_executor = get_executor

__all__ = ["get_client", "get_executor", "get_worker", "rejoin", "secede", "worker_client",
           "worker_executor"]
