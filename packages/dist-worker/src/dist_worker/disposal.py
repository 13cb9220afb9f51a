"""The values a worker lets go of are dropped on a thread of their own.

Dropping a value's last reference runs its finalizers (``__del__``, weak reference callbacks):
user code, which may take long (closing a connection, flushing a file over the network) or
block. Run on the event loop, it would silence the whole worker: no heartbeat, no peer
served, and past the center's heartbeat timeout the worker is removed with every result it
holds. So the store collects what it lets go of, and the server hands each batch, once its
events are handled, to one thread that drops them (a few microseconds later, for values
without finalizers of their own, than dropping them at once would).
"""
from __future__ import annotations

import queue
import threading
from typing import Any

# Values of these exact types run no user code when dropped (a subclass may: ``type(v) in``,
# never ``isinstance``). They are dropped where they are let go of: handing one to the thread
# would wake it, for a lone small result once per task, for nothing.
WITHOUT_FINALIZERS = frozenset((type(None), bool, int, float, complex, str, bytes, bytearray))


class Disposer:
    """A daemon thread, started at the first ``drop``, dropping the lists of values it is
    handed, in order, until ``close``."""

    def __init__(self) -> None:
        self._batches: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def drop(self, values: list[Any]) -> None:
        """Drop ``values`` (the caller keeps no reference to the list) on the thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=_drop_until_closed, args=(self._batches,),
                                            name="dist-worker-disposal", daemon=True)
            self._thread.start()
        self._batches.put(values)

    def close(self) -> None:
        """The thread ends once it has dropped what it was handed (a worker in the user's
        own process leaves no thread behind)."""
        if self._thread is not None:
            self._batches.put(None)
            self._batches = queue.SimpleQueue()  # (for a thread of its own, should it drop more)
            self._thread = None


def _drop_until_closed(batches: queue.SimpleQueue[list[Any] | None]) -> None:
    while True:
        values = batches.get()
        if values is None:
            return
        values.clear()


__all__ = ["WITHOUT_FINALIZERS", "Disposer"]
