"""dask settings that must hold while dask graphs may run on a cluster.

dask picks a dataframe shuffle method when a graph is optimized, before any scheduler sees
it. Unless told otherwise it picks ``"disk"`` for every scheduler but a dask.distributed
client: a shuffle through a partd directory on the local file system, which gives wrong
results as soon as the tasks of one shuffle run on different hosts. So while an executor is
open, and around every graph this client optimizes itself, an unset method means
``"tasks"`` (a shuffle made of ordinary tasks, right on any cluster) -- as dask.distributed's
client once set it for the same reason. A method the user chose is left alone.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

SHUFFLE_METHOD = "dataframe.shuffle.method"
CLUSTER_SHUFFLE = "tasks"

_lock = threading.Lock()
_open_executors = 0
_set_here = False


def executor_opened() -> None:
    """Counted per executor; dask is only configured if the program has imported it
    (importing it here would cost every client half a second)."""
    global _open_executors, _set_here
    with _lock:
        _open_executors += 1
        if "dask" not in sys.modules or _set_here:
            return
        import dask.config
        if dask.config.get(SHUFFLE_METHOD, None) is None:
            dask.config.set({SHUFFLE_METHOD: CLUSTER_SHUFFLE})
            _set_here = True


def executor_closed() -> None:
    """The last executor closed: an unset method is unset again."""
    global _open_executors, _set_here
    with _lock:
        _open_executors = max(0, _open_executors - 1)
        if _open_executors or not _set_here:
            return
        _set_here = False
        import dask.config
        if dask.config.get(SHUFFLE_METHOD, None) == CLUSTER_SHUFFLE:
            dask.config.set({SHUFFLE_METHOD: None})


@contextlib.contextmanager
def cluster_shuffle() -> Iterator[None]:
    """Around optimizing a graph for the cluster: an unset shuffle method is ``"tasks"``."""
    import dask.config
    if dask.config.get(SHUFFLE_METHOD, None) is not None:
        yield
        return
    with dask.config.set({SHUFFLE_METHOD: CLUSTER_SHUFFLE}):
        yield
