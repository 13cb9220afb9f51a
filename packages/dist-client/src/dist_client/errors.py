"""Errors a client raises besides the tasks' own exceptions."""
from __future__ import annotations

from collections.abc import Hashable
from concurrent.futures import CancelledError


class KilledWorker(Exception):
    """A task was running on workers that died too many times; it is not tried again."""


class LostDataError(Exception):
    """Every copy of a key's data is gone and it has no lineage to recompute it from."""


class RemoteError(Exception):
    """A task failed with an exception that could not be sent back as itself."""

    def __init__(self, exception_type: str, message: str, traceback: str = ""):
        super().__init__(f"{exception_type}: {message}")
        self.exception_type = exception_type
        self.remote_traceback = traceback


class ClusterError(ConnectionError):
    """The connection to the center is gone, so results cannot arrive."""


class EnvironmentMismatch(RuntimeError, ValueError):
    """The client and workers run different Python minor versions (or, from
    ``versions(check=True)``, different package versions): pickled code cannot go there.
    A ``ValueError`` too, as dask's ``get_versions(check=True)`` raises one."""


class CenterLostError(ClusterError, LostDataError):
    """The connection to the center was lost: this future's task or data is gone with it (a
    restarted center starts empty). The Executor reconnects; submit the work again."""


class ExecutorClosedError(ClusterError, RuntimeError):
    """The Executor was closed (or shut down): it takes no new work.

    A ``RuntimeError`` too, as ``concurrent.futures`` executors raise after ``shutdown``.
    """


class PluginUnpicklingError(ValueError):
    """A worker plugin did not unpickle on a worker (its class's module is missing there, say):
    the registration failed, and no worker keeps the plugin."""


def released_error(key: Hashable) -> CancelledError:
    """What waiting on a Future its holder released while it was pending raises (``key`` as
    the user gave it): the handle no longer follows the key, which will never settle for it."""
    return CancelledError(f"{key} was released before it finished: this handle no longer "
                          f"follows it (keep it until its result is read)")


__all__ = ["CancelledError", "CenterLostError", "ClusterError", "EnvironmentMismatch",
           "ExecutorClosedError", "KilledWorker", "LostDataError", "PluginUnpicklingError",
           "RemoteError", "released_error"]


# Why dask's calls that run code on the scheduler (run_on_scheduler, scheduler plugins) are
# not in dist; formatted with what the user asked for.
CENTER_RUNS_NO_USER_CODE = (
    "{} would run code in the center, which dist never does: the center does not unpickle "
    "user code, so a faulty function cannot stop the scheduling of every client. Run code on "
    "the workers with run() or a worker plugin (register_plugin), or read the center's state "
    "with scheduler_info(), story() or get_task_stream()")
