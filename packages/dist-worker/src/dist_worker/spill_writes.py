"""The values being written to disk on the writer's thread while the worker's loop goes on.

A value of ``OFF_LOOP_FROM`` bytes or more is written by the worker's ``SpillWriter``, on a
thread, one at a time, while the loop goes on (a large value took it seconds): from the
moment the store chooses it until its file is whole it is *being written*. Meanwhile it is
out of the spill order and no longer counts towards the target (it is leaving), but it is
still in memory, counted in the store's ``managed``, and served from there: a task that reads
it, or a peer that fetches it, gets the object itself, and the write goes on (the value leaves
memory when it ends; a running task's reference keeps it alive until the task returns, as for
any value spilled while a task reads it). A value freed or replaced meanwhile has its write
abandoned (it stops at its next step, and its file is removed). Each outcome is handed to the
store on the loop, in the order the writes end.

Room made for a value read back on a thread (``RoomWait``) waits for every write begun to
make it, whatever their size: the read begins once they have all left memory.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .spill import PendingWrite
from .spillwriter import Done

# A value at least this large is written to disk on the writer's thread, one at a time: a
# smaller one takes the loop a few tenths of a second at most, and is written there at once,
# as is any value while another is being written. A value being written is still in memory
# while the loop goes on reading what peers and clients send: with every value of 8 MiB or
# more written on the thread, a scatter of 40 MB blocks to a full 300 MB worker passed its
# limit (one run in three), where writing them on the loop had held the rest back.
OFF_LOOP_FROM = 64 * 2**20

Ended = Callable[[PendingWrite, BaseException | None], None]


class Writer(Protocol):
    """Where the store's large writes run (``spillwriter.SpillWriter``): ``write`` on any
    thread, then ``done`` on the store's own."""

    def submit(self, write: Callable[[], object], done: Done) -> None: ...

    def close(self) -> None: ...


class RoomWait:
    """Room made for a value read back: the writes begun for it that have not ended yet, and
    whom to tell once none is left."""

    __slots__ = ("writes", "done", "begun")

    def __init__(self, done: Callable[[], None]):
        self.writes: set[PendingWrite] = set()
        self.done = done
        self.begun = False  # every write it waits for has been begun


class OffLoopWrites:
    """The writes under way on ``writer``'s thread (``None``: every write is on the loop),
    each key with its write, its value and its estimated weight, until the write ends."""

    __slots__ = ("writer", "weight", "_under_way", "_room_waits")

    def __init__(self, writer: Writer | None):
        self.writer = writer
        self.weight = 0  # bytes of the values being written (estimated)
        self._under_way: dict[str, tuple[PendingWrite, Any, int]] = {}
        self._room_waits: list[RoomWait] = []

    def __contains__(self, key: object) -> bool:
        return key in self._under_way

    def __len__(self) -> int:
        return len(self._under_way)

    def keys(self) -> list[str]:
        return list(self._under_way)

    def get(self, key: str, default: Any = None) -> Any:
        """The value being written under ``key``, else ``default``."""
        under_way = self._under_way.get(key)
        return default if under_way is None else under_way[1]

    def begin(self, pending: PendingWrite, value: Any, weight: int, ended: Ended,
              wait: RoomWait | None = None) -> None:
        """Have the writer run ``pending`` (the write of ``value``); ``ended`` is called on
        the loop with its outcome, then ``wait``, if given, is told it has ended."""
        self._under_way[pending.key] = (pending, value, weight)
        self.weight += weight
        if wait is not None:
            wait.writes.add(pending)
        assert self.writer is not None
        self.writer.submit(pending.run, lambda error: self._ended(pending, error, ended))

    def _ended(self, pending: PendingWrite, error: BaseException | None,
               ended: Ended) -> None:
        try:
            ended(pending, error)
        finally:
            for wait in [wait for wait in self._room_waits if pending in wait.writes]:
                wait.writes.discard(pending)
                self._room_wait_over(wait)

    def finish(self, pending: PendingWrite) -> tuple[Any, int] | None:
        """``pending`` ended: its value and weight, no longer counted here; ``None`` when
        the value was freed or replaced meanwhile (its write abandoned)."""
        under_way = self._under_way.get(pending.key)
        if under_way is None or under_way[0] is not pending:
            return None
        del self._under_way[pending.key]
        self.weight -= under_way[2]
        return under_way[1], under_way[2]

    def abandon(self, key: str) -> tuple[Any, int] | None:
        """``key`` is freed or replaced while it is being written: its write stops at its next
        step (and ``finish`` then says so); its value and weight, or ``None`` if it was not
        being written."""
        under_way = self._under_way.pop(key, None)
        if under_way is None:
            return None
        pending, value, weight = under_way
        pending.abandoned = True
        self.weight -= weight
        return value, weight

    def room_wait(self, done: Callable[[], None]) -> RoomWait:
        """A wait for the writes about to be begun to make room; ``room_begun`` once they
        are, and ``done`` is called once every one of them has ended."""
        wait = RoomWait(done)
        self._room_waits.append(wait)
        return wait

    def room_begun(self, wait: RoomWait) -> None:
        """Every write ``wait`` waits for has been begun (``done`` at once if none was)."""
        wait.begun = True
        self._room_wait_over(wait)

    def _room_wait_over(self, wait: RoomWait) -> None:
        """``wait``'s writes may all have ended: if so, it is told (once)."""
        if wait.begun and not wait.writes and wait in self._room_waits:
            self._room_waits.remove(wait)
            wait.done()

    def close(self) -> None:
        """End the writer's thread (the writes under way abandoned first, by the store)."""
        if self.writer is not None:
            self.writer.close()
