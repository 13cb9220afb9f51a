"""dist-client: run Python functions on a dist cluster.

    >>> from dist_client import Executor
    >>> e = Executor('127.0.0.1:8787')
    >>> e.submit(inc, 1).result()
    2
"""
from concurrent.futures import CancelledError

from dist_protocol.errors import AuthenticationError

from .asynchronous import AsyncExecutor
from .datasets import fire_and_forget
from .errors import (CenterLostError, ClusterError, EnvironmentMismatch, ExecutorClosedError,
                     KilledWorker, LostDataError, RemoteError)
from .executor import Executor
from .future import Future
from .in_task import get_executor, rejoin, secede, worker_executor
from .progress import progress
from .waiting import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, as_completed, wait

__version__ = "0.1.0"

__all__ = ["ALL_COMPLETED", "AsyncExecutor", "AuthenticationError", "CancelledError",
           "CenterLostError", "ClusterError", "EnvironmentMismatch", "Executor",
           "ExecutorClosedError", "FIRST_COMPLETED", "FIRST_EXCEPTION", "Future", "KilledWorker",
           "LostDataError", "RemoteError", "as_completed", "fire_and_forget", "get_executor",
           "progress", "rejoin", "secede", "wait", "worker_executor"]
