"""What a running task may know of the worker that runs it. No I/O.

A worker sets a ``TaskContext`` for the thread that runs each task; a client library read by
the task (``dist_client.get_executor()``, ``secede()``, ``get_worker()``) finds it with
``current()``. A ``dworker`` process also says how to describe its worker to threads a task
started (``current_or_process()``). The contract lives here, beside the wire protocol both
sides depend on, so that neither the worker nor the client imports the other.
"""
from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class ThreadSlots(Protocol):
    """The worker's side of ``secede``/``rejoin``, for the task ``key``."""

    def secede(self, key: str) -> None:
        """Give the running task's thread slot back: the worker may start another task."""

    def rejoin(self, key: str) -> None:
        """Take a slot back before going on; blocks until one is free."""

    def has_seceded(self) -> bool:
        """Whether the task running in the calling thread has given its slot back."""


class PluginLoadError(RuntimeError):
    """A worker plugin's pickle did not load on the worker (its class's module is missing
    there, say)."""


class WorkerPluginHost(Protocol):
    """The worker's side of ``register_plugin``/``unregister_worker_plugin``, called on a
    pool thread by the task a client sends to each worker."""

    def add(self, name: str, content: bytes) -> None:
        """Set up the plugin pickled in ``content`` as ``name``, replacing one of that name
        (nothing when this one is set up already); raises ``PluginLoadError`` when it does
        not unpickle, and what its ``setup`` raises."""

    def remove(self, name: str) -> None:
        """Tear down the plugin ``name``, if the worker has it."""


class RunOnThread(BaseException):
    """Raised by a task that the worker ran on its event loop's own thread (a task known to be
    quick) when the task wants to wait on the cluster: the worker runs it again on a pool
    thread, and no longer runs that function on the loop. A ``BaseException``, so that user
    code catching ``Exception`` does not swallow it."""


class Reschedule(Exception):
    """Raised by a task to be put back and run again, maybe on another worker, as dask's
    ``distributed.Reschedule``: not an error, and not counted as one of its ``retries``. The
    center places it as it would a new task, so it may land on the same worker again."""


# Where dask.distributed defines its own: a task written for dask raises that class.
_DASK_RESCHEDULE = {("distributed.exceptions", "Reschedule"), ("distributed.worker", "Reschedule")}


def is_reschedule(exc: BaseException) -> bool:
    """Whether a task's ``exc`` asks to reschedule it: ours, or dask.distributed's (known by
    its name, so that the worker need not import dask.distributed)."""
    kind = type(exc)
    return isinstance(exc, Reschedule) or any(
        (cls.__module__, cls.__qualname__) in _DASK_RESCHEDULE for cls in kind.__mro__)


class WorkerLocalData(dict[Hashable, Any]):
    """A mapping a worker's tasks share, for what they want to keep across tasks on that
    worker (a loaded model, a connection): empty when the worker starts, gone when it stops or
    restarts. It is not the worker's stored results, which tasks reach by taking futures as
    arguments; a missing name says so."""

    def __missing__(self, name: Hashable) -> Any:
        raise KeyError(f"{name!r}: nothing of that name was put in this worker's local data by "
                       f"a task (it holds what tasks put there, not the worker's stored results "
                       f"-- pass a future as an argument to have its value)")

    def __repr__(self) -> str:
        return f"<WorkerLocalData: {len(self)} entries put by tasks>"


class CenterOfWorker(NamedTuple):
    address: str  # the center's address, as the worker reaches it


@dataclass(frozen=True, slots=True, eq=False)
class WorkerInfo:
    """A read-only view of the worker that runs a task, as dask's ``get_worker()`` gives."""

    address: str
    name: str  # the worker's name (its address unless it was given one)
    id: str  # unique to this worker process and start: a restarted worker has another
    nthreads: int
    memory_limit: int | None  # bytes; None when the worker has no limit
    local_directory: str  # a folder of this worker's own, removed when it stops
    data: WorkerLocalData = field(default_factory=WorkerLocalData)
    center_address: str = ""  # as the worker reaches it ("" from a worker that does not say)

    def log_event(self, topic: Any, msg: Any) -> None:
        """Log an event to the center's event log, as dask's ``Worker.log_event``: through the
        task's executor, which the client library provides (``set_event_logger``)."""
        if _event_logger is None:
            raise RuntimeError("get_worker().log_event needs dist-client, which logs the event "
                               "through the task's executor; it is not imported here")
        _event_logger(topic, msg)

    @property
    def scheduler(self) -> CenterOfWorker:
        """What dask code reads its scheduler's address from: ``get_worker().scheduler
        .address`` is the center's."""
        return CenterOfWorker(self.center_address)

    def __repr__(self) -> str:
        return f"<WorkerInfo {self.name!r}: {self.address}, {self.nthreads} threads>"


class TaskContext(NamedTuple):
    """Read-only, as a frozen dataclass would be; a tuple, since a worker makes one for every
    task it runs, and a frozen dataclass sets each of its fields through a call (4 to 5 times
    the cost, paid per task of a short task's path)."""

    key: str  # the running task's key
    worker: str  # the worker's address
    center: str  # the center's address, as the worker reaches it
    token: str | None  # the cluster's shared token, if it has one
    ssl_context: ssl.SSLContext | None  # the worker's TLS context as a client, if TLS is on
    slots: ThreadSlots
    on_loop: bool = False  # run on the worker's event loop thread: it must not block
    about_worker: WorkerInfo | None = None  # None from a worker that does not say
    plugins: WorkerPluginHost | None = None  # None from a worker without plugins

    def secede(self) -> None:
        self._leave_loop("secede")
        self.slots.secede(self.key)

    def rejoin(self) -> None:
        self._leave_loop("rejoin")
        self.slots.rejoin(self.key)

    def leave_loop(self, what: str) -> None:
        """Called before anything that may block: a task on the event loop cannot block, so
        it is run again on a pool thread (see ``RunOnThread``)."""
        self._leave_loop(what)

    def _leave_loop(self, what: str) -> None:
        if self.on_loop:
            raise RunOnThread(f"{what} in task {self.key}, which ran on the worker's event loop")


class _ThreadTask(threading.local):
    # None, the class's, in a thread that never ran a task: read without the AttributeError
    # that ``getattr`` with a default raises and drops inside (0.7 -> 0.1 us), on every
    # ``Future.result`` outside a task.
    context: TaskContext | None = None


_local = _ThreadTask()
# How ``WorkerInfo.log_event`` reaches the center: set by the client library when imported.
_event_logger: Callable[[Any, Any], None] | None = None
# In a process that is one worker (``dworker``): how that worker describes itself to threads
# it did not start for a task (those a task started); None elsewhere.
_process_worker: Callable[[], TaskContext] | None = None


def current() -> TaskContext | None:
    """The context of the task this thread is running, or None outside a task."""
    return _local.context


def set_process_worker(describe: Callable[[], TaskContext] | None) -> None:
    """Called by a process that is one worker, once it serves: ``describe()`` gives the
    context for a thread running no task of its own, such as one a task started for its own
    work (None: no longer)."""
    global _process_worker
    _process_worker = describe


def set_event_logger(logger: Callable[[Any, Any], None] | None) -> None:
    """Called by the client library: ``logger(topic, msg)`` logs a task's event."""
    global _event_logger
    _event_logger = logger


def current_or_process() -> TaskContext | None:
    """``current()``, else, in a worker's process, its worker's context (as dask's
    ``get_worker()`` finds the worker of its process from any thread): a thread a task
    started reaches the cluster as the task does. Never a task's thread slots: such a thread
    has none to give back."""
    context = current()
    if context is None and _process_worker is not None:
        return _process_worker()
    return context


def slot_given_back() -> contextlib.AbstractContextManager[None]:
    """Around a wait for other tasks' results: a task waiting in its thread gives its slot
    back meanwhile and takes one back after (as Ray does), so tasks that wait on tasks they
    submitted never hold every thread of the cluster with none left to run what they wait
    for. Outside a task, in a task that seceded already, and on the worker's loop (where a
    task asking for the cluster has left the loop already) the wait is left as it is: then
    nothing is made per wait (a ``Future.result`` outside a task is the usual case)."""
    context = current()
    if context is None or context.on_loop or context.slots.has_seceded():
        return _NOTHING_GIVEN_BACK
    return _given_back(context)


_NOTHING_GIVEN_BACK = contextlib.nullcontext()


@contextlib.contextmanager
def _given_back(context: TaskContext) -> Iterator[None]:
    context.slots.secede(context.key)
    try:
        yield
    finally:
        context.slots.rejoin(context.key)


def set_current(context: TaskContext | None) -> TaskContext | None:
    """Make ``context`` this thread's (None: no task); returns the one it replaces."""
    previous = _local.context
    _local.context = context
    return previous
