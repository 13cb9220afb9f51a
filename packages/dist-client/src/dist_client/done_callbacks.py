"""The done callbacks of futures (``Future.add_done_callback``) run on a thread of their own.

Keys settle on the client's I/O thread. A callback run there, as user code may take long or
block (a callback that waits on a lock, writes to a slow disk, submits and waits), held up
the whole client: every other future, the reconnection, the goodbye to the center. As dask
does, callbacks of futures that settle later run on one thread of the process, in the order
their futures settled; a callback added to a future already done runs at once in the
caller's thread, as ``concurrent.futures`` runs it.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dist_client")

Call = tuple[Callable[[Any], object], Any]


class DoneCallbacks:
    """A daemon thread, started at the first callback (again in a forked child), running the
    callbacks handed to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: queue.SimpleQueue[Call] = queue.SimpleQueue()
        self._pid = 0

    def call_soon(self, callback: Callable[[Any], object], future: Any) -> None:
        """``callback(future)`` on the thread; what it raises is logged."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._calls = queue.SimpleQueue()
                threading.Thread(target=_run, args=(self._calls,), daemon=True,
                                 name="dist-client-callbacks").start()
            calls = self._calls
        calls.put((callback, future))


def _run(calls: queue.SimpleQueue[Call]) -> None:
    while True:
        callback, future = calls.get()
        try:
            callback(future)
        except BaseException:  # not even SystemExit may end the thread
            log.exception("a done callback raised")
        del callback, future  # (the future is not kept alive until the next callback)


DONE_CALLBACKS = DoneCallbacks()

__all__ = ["DONE_CALLBACKS", "DoneCallbacks"]
