"""dask's ``MultiLock``: several named locks taken together, or ``num_locks`` of them, held
until ``release()``. The center is the authority (``coordinate`` of kind ``multi-lock``): it
grants each lock first come first served, so a request for many locks is never starved by
requests for a few, and releases what a client held when that client goes.

A multi-lock's names are its own, as in dask: ``MultiLock(["x"])`` and ``Lock("x")`` are two
locks.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from typing import Any

from dist_protocol.messages import CoordinateReply

from .arguments import given_timeout
from .primitives import Primitive


class MultiLock(Primitive):
    """Hold the locks ``names`` together (dask's ``distributed.MultiLock``)::

        with MultiLock(["db", "cache"]):
            ...
        lock = MultiLock(["a", "b", "c"]); lock.acquire(timeout="1s", num_locks=2)

    Made with an ``AsyncExecutor`` (``executor=``, or dask's ``client=``), its methods
    return awaitables. Not re-entrant: one object holds its locks once."""

    kind = "multi-lock"
    feature = "multi-lock"

    def __init__(self, names: Iterable[str] | None = None, client: Any = None, *,
                 executor: Any = None):
        names = list(names or [])
        for name in names:
            if not isinstance(name, str) or not name:
                raise TypeError(f"a MultiLock's names are non-empty strings, not {name!r}")
        self.names = names
        super().__init__(None, executor, client=client)

    def __repr__(self) -> str:
        return f"<MultiLock: {self.names}>"

    def _state(self) -> dict[str, Any]:
        # (passed to a task: the same locks there, not held by that copy)
        return {"name": self.name, "names": self.names}

    def _restored(self) -> None:
        self._lease: str | None = None  # while this object asks for its locks or holds them
        self._held = False
        self._state_lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: Any = None,
                num_locks: int | None = None) -> Any:
        """Take the locks (``num_locks`` of them, by default all); True once held, False if
        ``timeout`` (seconds, or dask's ``"200ms"``) passed first or, not ``blocking``,
        they are not free now."""
        wait = given_timeout("timeout", timeout)
        if not blocking:
            if wait is not None:
                raise ValueError("can't specify a timeout for a non-blocking call")
            wait = 0
        if not self.names:
            raise ValueError("a MultiLock of no names has nothing to acquire")
        needed = len(self.names) if num_locks is None else num_locks
        if not isinstance(needed, int) or not 1 <= needed <= len(self.names):
            raise ValueError(f"num_locks must be between 1 and the {len(self.names)} names, "
                             f"not {num_locks!r}")
        lease = uuid.uuid4().hex
        with self._state_lock:
            if self._lease is not None:
                raise RuntimeError(f"{self!r} is held already: release it first (a MultiLock "
                                   "is not re-entrant)")
            self._lease = lease  # (claimed meanwhile: a second acquire is refused at once)

        def then(reply: CoordinateReply) -> bool:
            if reply.status == "timeout":
                self._lease = None
                return False
            self._held = True
            return True
        try:
            result = self._ask("acquire", then, timeout=wait, limit=needed, lease=lease,
                               names=self.names)
        except BaseException:
            self._lease = None
            raise
        if self.asynchronous:
            return self._settling(result)
        return result

    async def _settling(self, reply: Any) -> bool:
        try:
            return await reply
        except BaseException:
            self._lease = None
            raise

    def release(self) -> Any:
        """Let go of the locks; ``ValueError`` if this object does not hold them (as dask)."""
        with self._state_lock:
            if not self._held:
                raise ValueError("Lock is not yet acquired")
            lease, self._lease, self._held = self._lease, None, False
        return self._ask("release", lambda reply: None, lease=lease)

    def locked(self) -> bool:
        """Whether this object holds its locks."""
        return self._held

    def __enter__(self) -> MultiLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    async def __aenter__(self) -> MultiLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.release()


__all__ = ["MultiLock"]
