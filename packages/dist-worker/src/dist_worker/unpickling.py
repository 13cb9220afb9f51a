"""One unpickling at a time in a worker process, so that none sees a package half imported.

Unpickling imports the modules its objects live in. Python counts a module imported once its
own code has run, even while the package holding it is still running its ``__init__``; a
second thread that then finds that module in ``sys.modules`` uses it at once. With dask.array,
one thread unpickling a task imports the package, whose ``__init__`` has imported
``dask.array.core`` but not yet ``dask.array.backends``; another thread's task, which needs
only ``dask.array.core``, starts and fails with "No dispatch for numpy.ndarray" because
numpy's implementations are registered in ``backends``. Every unpickling a worker does of what
others sent it (a task's function and arguments on the task's thread, values fetched from
peers or put by clients on the event loop) holds one lock, so an import an unpickling began is
finished before the next unpickling starts. dask.distributed gets the same effect by
deserializing on one thread.

Only pickles import: the other serializers go by without the lock. The lock is re-entrant,
for an object whose unpickling unpickles another. The event loop asks ``busy()`` before it
runs a task itself: while a thread unpickles (importing a large library, say), the task goes
to a thread rather than stall the loop's heartbeats and transfers behind that import.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import Any

from dist_protocol.environment import describe, local_environment
from dist_protocol.errors import InvalidPayload
from dist_protocol.messages import Environment, PutData
from dist_protocol.serialize import (Payload, SerializationError, deserialize,
                                     deserialize_received)

log = logging.getLogger("dist.worker")

_lock = threading.RLock()


def unpickle(payload: Payload) -> Any:
    """``dist_protocol.serialize.deserialize``, one at a time in this process."""
    if payload.serializer != "pickle":
        return deserialize(payload)
    with _lock:
        try:
            return deserialize(payload)
        except SerializationError as exc:
            if not _unblocked(exc.__cause__):
                raise
            return deserialize(payload)


# The modules every pickle a client makes names (cloudpickle rebuilds functions and classes
# sent by value with its own). A task that blocked one (``sys.modules["cloudpickle"] = None``,
# as test code does to hide a package) made every later task of the worker with a function
# it had not loaded before fail with "import of cloudpickle halted": the block is the task's,
# the worker's own unpickling is not, so the block is lifted and the pickle read again.
_OWN_MODULES = frozenset({"cloudpickle", "cloudpickle.cloudpickle", "pickle", "copyreg"})


def _unblocked(cause: BaseException | None) -> bool:
    """Whether ``cause`` was a block of one of ``_OWN_MODULES``, now lifted."""
    name = getattr(cause, "name", None)
    if not isinstance(cause, ImportError) or name not in _OWN_MODULES \
            or name not in sys.modules or sys.modules[name] is not None:
        return False
    del sys.modules[name]  # (imported again by the next unpickling that names it)
    log.warning("a task blocked the import of %s (None in sys.modules), which the worker "
                "unpickles tasks with: the block is lifted", name)
    return True


def unpickle_received(payload: Payload, code: bool = True) -> Any:
    """``unpickle`` of a payload that arrived and that nothing reads again (a value from a
    peer or a client): a large ``bytes`` value is moved out of its frame, not copied
    (``deserialize_received``). ``code=False``: made by another Python minor version, so
    Python code in it is refused (``CodeRefused``)."""
    if payload.serializer != "pickle":
        return deserialize_received(payload)
    with _lock:
        return deserialize_received(payload, code=code)


def unpickle_put(msg: PutData) -> dict[str, Any]:
    """The values a client put here (``unpickle_received``); a value that does not unpickle
    is the sender's fault (``InvalidPayload``), not a bug of ours."""
    values = {}
    for key, payload in msg.data.items():
        try:
            values[key] = unpickle_received(payload)
        except SerializationError as exc:
            raise InvalidPayload(f"put-data: the value of {key!r}: {exc}") from None
    return values


def busy() -> bool:
    """Whether another thread is unpickling at this moment."""
    if _lock.acquire(blocking=False):
        _lock.release()
        return False
    return True


def import_module(name: str) -> Any:
    """``importlib.import_module``, under the same lock (a function named by its path)."""
    with _lock:
        return importlib.import_module(name)


def code_from_elsewhere(made_by: Environment | None) -> str:
    """Why a fetched value was refused: it holds Python code pickled by another Python minor
    version (``deserialize(code=False)``)."""
    return (f"it was pickled by {describe(made_by)} and holds Python code (a function, or a "
            f"class's methods, pickled by value), which this worker, on "
            f"{describe(local_environment())}, does not run: bytecode differs between Python "
            f"versions; compute it and the tasks reading it on workers of one Python version "
            f"(workers=[...])")
