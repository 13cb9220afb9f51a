"""dist-client: run Python functions on a dist cluster.

    >>> from dist_client import Executor
    >>> e = Executor('127.0.0.1:8787')
    >>> e.submit(inc, 1).result()
    2
"""
from concurrent.futures import CancelledError

from dist_protocol.errors import AuthenticationError
from dist_protocol.task_context import Reschedule

from .actors import Actor, ActorFuture, ActorLost
from .asynchronous import AsyncExecutor
from .current import default_executor
from .datasets import fire_and_forget
from .errors import (CenterLostError, ClusterError, EnvironmentMismatch, ExecutorClosedError,
                     KilledWorker, LostDataError, PluginUnpicklingError, RemoteError)
from .executor import Executor
from .future import Future
from .in_task import (get_client, get_executor, get_worker, rejoin, secede, worker_client,
                      worker_executor)
from .multi_lock import MultiLock
from .performance_report import performance_report
from .plugins import NannyPlugin, SchedulerPlugin, WorkerPlugin
from .persist import futures_of
from .primitives import (CoordinationError, Event, Lock, Pub, Queue, Semaphore, Sub,
                         Variable)
from .progress import progress
from .spans import span
# (not in __all__: a star import keeps the builtins)
from .task_output import print as print, warn as warn
from .task_stream import get_task_stream
from .waiting import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, as_completed, wait

__version__ = "0.1.0"

__all__ = ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "Actor", "ActorFuture",
           "ActorLost", "as_completed", "AsyncExecutor", "AuthenticationError", "CancelledError",
           "CenterLostError", "ClusterError", "CoordinationError", "default_executor",
           "EnvironmentMismatch", "Event", "Executor", "ExecutorClosedError", "fire_and_forget",
           "Future", "futures_of", "get_client", "get_executor", "get_task_stream", "get_worker",
           "KilledWorker", "LocalCluster", "Lock", "LostDataError", "MultiLock", "NannyPlugin",
           "performance_report",
           "PluginUnpicklingError",
           "progress", "Pub",
           "Queue", "rejoin",
           "RemoteError", "Reschedule", "SchedulerPlugin", "secede", "Semaphore", "span", "Sub",
           "Variable", "wait", "worker_client", "worker_executor", "WorkerPlugin"]


def __getattr__(name: str) -> object:
    # ``from dist_client import LocalCluster``, as ``from distributed import LocalCluster``;
    # loaded on first use, since most clients connect to a running center and never start one.
    if name == "LocalCluster":
        from .local import LocalCluster
        return LocalCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
