"""A Future that travels pickled inside another object (a dataclass, a closure, a pandas
object holding futures), as dask.distributed lets its futures travel.

Futures in plain containers (lists, tuples, dicts, sets) in a task's arguments become their
values on the worker (``packing.py``); one hidden inside anything else pickles to its key and
the address of its executor's center. Unpickled inside a task it becomes a future of the
executor the task's worker keeps on its cluster (``in_task.get_executor()``); in any other
process, of a running executor on that center, else of the default executor. The executor
it binds to tells the center it holds the key (``want-keys``) and, before the unpickling
ends, hears the center's answer: from then on the value lives while the rebuilt future
does.

Between the client pickling a future into a task (its arguments or its function) and the
worker taking its hold, the submitting client keeps the future alive until it hears how the
task ended (``pin``), even if the user drops it right after submitting: a task that
unpickles a future finds its key. A future pickled anywhere else (into a task's result, by
``pickle.dumps``) is held by nothing on its way.
"""
from __future__ import annotations

import threading
from typing import Any

from dist_protocol import task_context
from dist_protocol.messages import WantKeys, WhoHas

from . import current
from .errors import ClusterError

_pickling = threading.local()
# A new object each time a future is pickled: a caller that pickled no future (most) sees
# the same one after as before, and need not pickle again to learn which futures it holds.
generation = object()


def collect(found: list | None) -> list | None:
    """From now on, the futures pickled in this thread are appended to ``found`` (None:
    no longer collected); returns the list collected into before."""
    previous = getattr(_pickling, "found", None)
    _pickling.found = found
    return previous


def reduce(future: Any) -> tuple:
    """``Future.__reduce__``: its key and its center's address."""
    executor = future.executor
    if executor is None:
        raise TypeError(f"the Future of {future.key} was released and cannot be pickled")
    global generation
    generation = object()
    found = getattr(_pickling, "found", None)
    if found is not None:
        found.append(future)
    return (rebuild, (future.name, executor.address))


def rebuild(key: str, address: str) -> Any:
    """A Future of ``key`` (made by an executor on the center at ``address``) in this
    process: of the task's cluster inside a task, else of an executor on that center."""
    if task_context.current_or_process() is not None and current.task_executor is not None:
        executor = current.task_executor()  # (in_task.get_executor: dist_client imports it)
    else:
        executor = current.running_on(address) or current.running()
        if executor is None:
            raise ValueError(f"a Future of {key} (from the center at {address}) was unpickled "
                             "in a process with no running Executor: connect one to that "
                             "cluster first, Executor(address)")
    return _held(executor, key, address)


def _held(executor: Any, key: str, address: str) -> Any:
    core = executor.core
    with core.lock:  # (a thread dropping the last future of the key would release it between)
        if core.state.holds(key):
            return core.future(key)  # this client holds it already: the center knows
    if not core.center_has("datasets"):
        raise ClusterError(f"the center at {core.address} cannot hand a key to another client "
                           "(an older release: it did not announce the protocol feature "
                           "'datasets'), so a pickled Future cannot be unpickled there")
    future = core.future(key)
    core.send(WantKeys(keys=[key]))
    if not core.io.in_loop_thread:
        # The center reads a connection's messages in order: once it answers this, it holds
        # the key for this client (or has said it does not know it).
        core.run(core.ask(lambda request: WhoHas(id=request, keys=[key])))
        if future.status == "lost" and core.address != address:
            future.release()
            raise ValueError(f"a Future of {key} belongs to the cluster whose center is at "
                             f"{address}; it was unpickled for the executor on {core.address}, "
                             "whose center does not know that key (a future is only valid on "
                             "the cluster that made it)")
    return future


def pin(task_future: Any, pickled: list) -> None:
    """Keep the futures pickled into the task of ``task_future`` until the client hears how
    that task ended: the worker running it takes its own holds on their keys meanwhile."""
    kept = list(pickled)
    task_future.keystate.on_done(kept.clear)


__all__ = ["collect", "pin", "rebuild", "reduce"]
