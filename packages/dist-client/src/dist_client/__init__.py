"""dist-client: run Python functions on a dist cluster.

    >>> from dist_client import Executor
    >>> e = Executor('127.0.0.1:8787')
    >>> e.submit(inc, 1).result()
    2
"""
from concurrent.futures import CancelledError

from dist_protocol.errors import AuthenticationError

from .errors import ClusterError, KilledWorker, LostDataError, RemoteError
from .executor import Executor
from .future import Future

__version__ = "0.1.0"

__all__ = ["AuthenticationError", "CancelledError", "ClusterError", "Executor", "Future",
           "KilledWorker", "LostDataError", "RemoteError"]
