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
dask.distributed ``Client`` exists), unless the executor is opened inside a task; and so do
the names dask gives a cluster's scheduler, ``scheduler="distributed"`` and
``"dask.distributed"``, which dask would otherwise look up as a dask.distributed client. A program
that imports dask after opening its executor gets the same: the settings are made when dask
is imported.
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
CLUSTER_SCHEDULER_NAMES = ("distributed", "dask.distributed")
# dask shortens the traceback of an error that ``compute``/``persist`` raise to the user's
# frames and the task's, leaving out the scheduler's (its list names dask.distributed's
# client and worker modules): dist's client, and the worker frame a task's error carries,
# are left out likewise.
TRACEBACK_SHORTEN = "admin.traceback.shorten"
DIST_FRAMES = (r"dist_client[\\/]", r"dist_protocol[\\/]", r"dist_worker[\\/]execution\.py")
_shorten_before: list[Any] = []  # dask's list before ours was added, to put back

_lock = threading.Lock()
_open_executors = 0
_set_here: set[str] = set()  # the settings made here, to unset after the last executor
# An open executor may be dask's scheduler, but dask was not imported yet when it opened.
_scheduler_wanted = False


def executor_opened(default_scheduler: bool) -> None:
    """Counted per executor. dask is configured now if the program has imported it, or else
    as soon as it does (importing it here would cost every client a third of a second).
    ``default_scheduler``: the executor may be dask's scheduler (a blocking one, not opened
    inside a task)."""
    global _open_executors, _scheduler_wanted
    with _lock:
        _open_executors += 1
        wanted = default_scheduler and task_context.current() is None
        if "dask" not in sys.modules:
            _scheduler_wanted = _scheduler_wanted or wanted
            _configure_on_import()
            return
        _configure(wanted)


def _configure(default_scheduler: bool) -> None:
    import dask.config
    if SHUFFLE_METHOD not in _set_here and dask.config.get(SHUFFLE_METHOD, None) is None:
        dask.config.set({SHUFFLE_METHOD: CLUSTER_SHUFFLE})
        _set_here.add(SHUFFLE_METHOD)
    if (default_scheduler and SCHEDULER not in _set_here
            and dask.config.get(SCHEDULER, None) is None):
        dask.config.set({SCHEDULER: cluster_get})
        _set_here.add(SCHEDULER)
    shorten = dask.config.get(TRACEBACK_SHORTEN, None)
    if (TRACEBACK_SHORTEN not in _set_here and isinstance(shorten, list)
            and not set(DIST_FRAMES) <= set(shorten)):
        _shorten_before[:] = [shorten]
        dask.config.set({TRACEBACK_SHORTEN: [*shorten, *DIST_FRAMES]})
        _set_here.add(TRACEBACK_SHORTEN)
    if default_scheduler:
        import dask.base
        for name in CLUSTER_SCHEDULER_NAMES:
            if dask.base.named_schedulers.setdefault(name, cluster_get) is cluster_get:
                _set_here.add(name)


def _dask_imported() -> None:
    """dask was imported while executors are open: configure it as if it had been before."""
    global _scheduler_wanted
    with _lock:
        if _open_executors:
            _configure(_scheduler_wanted)
        _scheduler_wanted = False


class _WhenDaskImported:
    """A meta path finder that finds nothing itself: when ``dask`` is imported, it asks the
    other finders, as the import system would, and has the module configured once the
    package has run. (No ``importlib.abc``: it would import ``tempfile`` and ``pathlib``
    into every client.)"""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "dask":
            return None
        _stop_watching()
        spec = None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_package = loader.exec_module

        def exec_module(module: Any) -> None:
            run_package(module)
            _dask_imported()
        loader.exec_module = exec_module
        return spec


_watcher = _WhenDaskImported()


def _configure_on_import() -> None:
    if _watcher not in sys.meta_path:
        sys.meta_path.insert(0, _watcher)


def _stop_watching() -> None:
    try:
        sys.meta_path.remove(_watcher)
    except ValueError:
        pass  # (another thread's import of dask got there first)


def executor_closed() -> None:
    """The last executor closed: what was unset is unset again."""
    global _open_executors, _scheduler_wanted
    with _lock:
        _open_executors = max(0, _open_executors - 1)
        if _open_executors:
            return
        _scheduler_wanted = False
        _stop_watching()
        if not _set_here:
            return
        import dask.base
        import dask.config
        ours = {SHUFFLE_METHOD: CLUSTER_SHUFFLE, SCHEDULER: cluster_get}
        for name in _set_here:
            if name == TRACEBACK_SHORTEN:
                shorten = dask.config.get(name, None)
                if isinstance(shorten, list) and shorten[-len(DIST_FRAMES):] == list(DIST_FRAMES):
                    dask.config.set({name: _shorten_before[0]})
            elif name in CLUSTER_SCHEDULER_NAMES:
                if dask.base.named_schedulers.get(name) is cluster_get:
                    del dask.base.named_schedulers[name]
            elif dask.config.get(name, None) == ours[name]:
                dask.config.set({name: None})
        _set_here.clear()


class MostRecentExecutor:
    """dask's scheduler while executors are open: the most recent one still running (dask's
    threads when none is: the setting may have been copied elsewhere). dask uses a
    scheduler's ``persist`` for ``x.persist()``/``dask.persist`` when the scheduler (a bound
    method) has one, as a dask.distributed ``Client`` does: the collections stay on the
    cluster, backed by futures, instead of coming to this process."""

    def get(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        executor = _running()
        if executor is None:
            import dask.threaded
            return dask.threaded.get(dsk, keys, **kwargs)
        return executor.get(dsk, keys, **kwargs)

    def persist(self, collections: Any, optimize_graph: bool = True, **kwargs: Any) -> Any:
        executor = _running()
        if executor is None:
            import dask
            return list(dask.persist(*collections, scheduler="threads",
                                     optimize_graph=optimize_graph))
        return executor.persist(collections, optimize_graph, **kwargs)


def _running() -> Any:
    from .current import running
    return running(asynchronous=False)


cluster_get = MostRecentExecutor().get


@contextlib.contextmanager
def cluster_shuffle() -> Iterator[None]:
    """Around optimizing a graph for the cluster: an unset shuffle method is ``"tasks"``."""
    import dask.config
    if dask.config.get(SHUFFLE_METHOD, None) is not None:
        yield
        return
    with dask.config.set({SHUFFLE_METHOD: CLUSTER_SHUFFLE}):
        yield
