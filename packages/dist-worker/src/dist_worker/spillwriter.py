"""Spill files written on a thread of their own, so that the event loop goes on meanwhile.

Writing a large value took the loop 0.3-2.6 s for 250-400 MB (compressing it and the disk),
and meanwhile the worker sent no heartbeat, served no peer and ran no inline task: with a
short heartbeat timeout the center removed a healthy worker in the middle of a spill. The
store (``store.DataStore``) prepares a large value's write on the loop, hands the write to
``SpillWriter.submit`` and records its outcome when ``done`` is called back, again on the
loop: every change of the store's state is made there, in the order the writes end. One
thread writes, one value at a time, in the order they were chosen to spill.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

Done = Callable[[BaseException | None], None]


class SpillWriter:
    """Runs writes on one thread; calls each one's ``done`` on the loop that submitted it
    (with the exception the write raised, or ``None``)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # (made at the first large spill)

    def submit(self, write: Callable[[], object], done: Done) -> None:
        loop = asyncio.get_running_loop()  # (the store is used on its loop only)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="dist-spill-writer")

        def run() -> None:
            error: BaseException | None = None
            try:
                write()
            except BaseException as exc:  # noqa: BLE001 -- reported on the loop, whatever it is
                # Without its traceback: the frames in it hold the write, and so the value,
                # until the cyclic collector finds them (a worker runs it seldom).
                error = exc.with_traceback(None)
            # A loop already closed has a worker closing, whose store gave the write up.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(done, error)

        self._pool.submit(run)

    def close(self) -> None:
        """Wait for the write under way (the store has abandoned it: it stops at its next
        step) and run no other."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
