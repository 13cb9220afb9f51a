"""The values a worker lets go of are dropped on a thread of their own.

Dropping a value's last reference runs its finalizers (``__del__``, weak reference callbacks):
user code, which may take long (closing a connection, flushing a file over the network) or
block. Run on the event loop, it would silence the whole worker: no heartbeat, no peer
served, and past the center's heartbeat timeout the worker is removed with every result it
holds. So the store collects what it lets go of, and the server hands each batch, once its
events are handled, to one thread that drops them (a few microseconds later, for values
without finalizers of their own, than dropping them at once would).

Once the values freed add up to ``TRIM_AFTER_FREEING``, the thread also gives the memory the
allocators kept back to the system, after dropping them: without it, results under glibc's
mmap threshold (32 MiB in a worker) leave the process as large as when it held them, long
after they were released, where dask's workers fall back to their size before.
"""
from __future__ import annotations

import ctypes
import logging
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dist.worker")

# Values of these exact types run no user code when dropped (a subclass may: ``type(v) in``,
# never ``isinstance``). They are dropped where they are let go of: handing one to the thread
# would wake it, for a lone small result once per task, for nothing.
WITHOUT_FINALIZERS = frozenset((type(None), bool, int, float, complex, str, bytes, bytearray))
# Nor does a numpy array (exactly ``ndarray``) that owns its memory, holds no Python objects and
# has no weak reference (whose callback would run): dropped where it is let go of too, up to
# this size, which gives its memory back in microseconds. A dask array's chunks and partial
# sums are freed one or two a task: handed over, each would wake the thread and have it wait
# for the loop's GIL. A larger one is unmapped on the thread (a gigabyte takes milliseconds).
PLAIN_ARRAY_DROPPED_AT_ONCE = 4 * 2**20
# Bytes of values freed between two returns of memory to the system: often enough that a big
# release shows in the process's size, rarely enough that a stream of small results pays
# little for the pages it faults in again.
TRIM_AFTER_FREEING = 64 * 2**20


def release_unused_memory() -> None:
    """Ask the allocators that keep freed memory for reuse to give it back to the system:
    pyarrow's pool (reading parquet leaves ~100 MB there) and glibc's heap. A worker paused
    for memory that its results no longer hold would otherwise wait for ever."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        try:
            pyarrow.default_memory_pool().release_unused()
        except Exception:  # noqa: BLE001 -- best effort: an old pyarrow lacks it
            pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim this way
            pass


def runs_no_code_when_dropped(value: Any) -> bool:
    """Whether dropping the last reference to ``value`` runs no user code, and is quick."""
    kind = type(value)
    if kind in WITHOUT_FINALIZERS:
        return True
    # (getattr: numpy may be half imported, by a task on another thread, and lack it yet)
    ndarray = getattr(sys.modules.get("numpy"), "ndarray", None)
    return (ndarray is not None and kind is ndarray and value.base is None
            and value.nbytes <= PLAIN_ARRAY_DROPPED_AT_ONCE and not value.dtype.hasobject
            and weakref.getweakrefcount(value) == 0)


# A batch whose dropping has taken longer than this is taken for stuck: a value's finalizer
# blocks (waits on a lock or a peer that never answers). Left so, every value freed after it
# waited behind it for the worker's life (+200 MB a round of 200 results of 1 MB). The later
# batches then go to a thread of their own; the stuck one is left to its finalizer.
STUCK_AFTER = 10.0


class Disposer:
    """A daemon thread, started at the first ``drop``, dropping the lists of values it is
    handed, in order, until ``close``; a new one in its place should one batch hold it for
    ``STUCK_AFTER`` seconds."""

    def __init__(self, stuck_after: float = STUCK_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after, self.clock = stuck_after, clock
        self._batches: queue.SimpleQueue[tuple[list[Any], bool] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Batches handed over, and batches dropped: each counted by one thread only.
        self._handed = 0
        self._dropped = [0]
        # When the thread began on the batch it is dropping (its own to write).
        self._began = [0.0]
        self.abandoned = 0  # threads left to a finalizer that blocks

    @property
    def dropping(self) -> bool:
        """Whether values handed over are not all dropped yet (their memory may still be
        held: a value just spilled, say, whose memory the process is about to give back)."""
        return self._dropped[0] != self._handed

    def drop(self, values: list[Any], release_memory: bool = False) -> None:
        """Drop ``values`` (the caller keeps no reference to the list) on the thread; then,
        with ``release_memory``, give what the allocators keep back to the system."""
        if self._thread is not None and self._stuck():
            self._abandon()
        if self._thread is None:
            self._thread = threading.Thread(
                target=_drop_until_closed, args=(self._batches, self._dropped, self._began,
                                                 self.clock),
                name="dist-worker-disposal", daemon=True)
            self._thread.start()
        self._handed += 1
        self._batches.put((values, release_memory))

    def _stuck(self) -> bool:
        began = self._began[0]
        return (self.dropping and began > 0.0
                and self.clock() - began > self.stuck_after)

    def _abandon(self) -> None:
        """Leave the thread to the batch it is stuck on; the batches queued behind that one
        go to the next thread."""
        stuck, waiting = self._batches, []
        while True:
            try:
                batch = stuck.get_nowait()
            except queue.Empty:
                break
            if batch is not None:
                waiting.append(batch)
        stuck.put(None)  # (the old thread ends, should its finalizer ever return)
        self._batches = queue.SimpleQueue()
        for batch in waiting:
            self._batches.put(batch)
        self._thread = None
        self._handed, self._dropped, self._began = len(waiting), [0], [0.0]
        self.abandoned += 1
        log.warning("a value's finalizer (__del__ or a weak reference's callback) has kept "
                    "the thread dropping freed values for over %.0f s: it is left to it, and "
                    "the values freed since are dropped on a new thread", self.stuck_after)

    def close(self) -> None:
        """The thread ends once it has dropped what it was handed (a worker in the user's
        own process leaves no thread behind)."""
        if self._thread is not None:
            self._batches.put(None)
            self._batches = queue.SimpleQueue()  # (for a thread of its own, should it drop more)
            self._thread = None
            self._handed, self._dropped, self._began = 0, [0], [0.0]


def _drop_until_closed(batches: queue.SimpleQueue[tuple[list[Any], bool] | None],
                       dropped: list[int], began: list[float],
                       clock: Callable[[], float]) -> None:
    while True:
        batch = batches.get()
        if batch is None:
            return
        values, release_memory = batch
        began[0] = clock()
        values.clear()
        if release_memory:
            release_unused_memory()
        began[0] = 0.0
        dropped[0] += 1


__all__ = ["PLAIN_ARRAY_DROPPED_AT_ONCE", "STUCK_AFTER", "TRIM_AFTER_FREEING",
           "WITHOUT_FINALIZERS", "Disposer", "release_unused_memory", "runs_no_code_when_dropped"]
