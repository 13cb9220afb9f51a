"""dask settings that must hold while dask graphs may run on a cluster.

dask picks a dataframe shuffle method when a graph is optimized, before any scheduler sees
it. Unless told otherwise it picks ``"disk"`` for every scheduler but a dask.distributed
client: a shuffle through a partd directory on the local file system, which gives wrong
results as soon as the tasks of one shuffle run on different hosts. So while an executor is
open, and around every graph this client optimizes itself, an unset method means
``"tasks"`` (a shuffle made of ordinary tasks, right on any cluster) -- as dask.distributed's
client once set it for the same reason. A method the user chose is left alone.

Likewise dask's scheduler: while an ``Executor`` is open, an unset scheduler means the most
recent running one (``collection.compute()`` runs on the cluster, as it does once a
dask.distributed ``Client`` exists), unless the executor is opened inside a task.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

from dist_protocol import task_context

SHUFFLE_METHOD = "dataframe.shuffle.method"
CLUSTER_SHUFFLE = "tasks"
SCHEDULER = "scheduler"

_lock = threading.Lock()
_open_executors = 0
_set_here: set[str] = set()  # the settings made here, to unset after the last executor


def executor_opened(default_scheduler: bool) -> None:
    """Counted per executor; dask is only configured if the program has imported it
    (importing it here would cost every client a third of a second). ``default_scheduler``:
    the executor may be dask's scheduler (a blocking one, not opened inside a task)."""
    global _open_executors
    with _lock:
        _open_executors += 1
        if "dask" not in sys.modules:
            return
        import dask.config
        if SHUFFLE_METHOD not in _set_here and dask.config.get(SHUFFLE_METHOD, None) is None:
            dask.config.set({SHUFFLE_METHOD: CLUSTER_SHUFFLE})
            _set_here.add(SHUFFLE_METHOD)
        if (default_scheduler and task_context.current() is None and SCHEDULER not in _set_here
                and dask.config.get(SCHEDULER, None) is None):
            dask.config.set({SCHEDULER: cluster_get})
            _set_here.add(SCHEDULER)


def executor_closed() -> None:
    """The last executor closed: what was unset is unset again."""
    global _open_executors
    with _lock:
        _open_executors = max(0, _open_executors - 1)
        if _open_executors or not _set_here:
            return
        import dask.config
        ours = {SHUFFLE_METHOD: CLUSTER_SHUFFLE, SCHEDULER: cluster_get}
        for name in _set_here:
            if dask.config.get(name, None) == ours[name]:
                dask.config.set({name: None})
        _set_here.clear()


def cluster_get(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """dask's scheduler while executors are open: the ``get`` of the most recent one still
    running (dask's threads when none is: the setting may have been copied elsewhere)."""
    from .current import running
    executor = running(asynchronous=False)
    if executor is None:
        import dask.threaded
        return dask.threaded.get(dsk, keys, **kwargs)
    return executor.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def cluster_shuffle() -> Iterator[None]:
    """Around optimizing a graph for the cluster: an unset shuffle method is ``"tasks"``."""
    import dask.config
    if dask.config.get(SHUFFLE_METHOD, None) is not None:
        yield
        return
    with dask.config.set({SHUFFLE_METHOD: CLUSTER_SHUFFLE}):
        yield
