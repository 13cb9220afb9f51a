"""The order in which a worker's values in memory spill: keys only, no values and no I/O.

Once the values in memory weigh more than the store's target, they go to disk in this order:

1. a value heavier than the whole target;
2. values whose readers here have all finished (what is left of them is for peers, the
   client, or tasks not yet sent here), least recently used first;
3. values no task here has read yet, nor is queued to read, least recently used first;
4. values a task queued here will read (``DataStore.plan_use``, from
   ``readers.UpcomingReads``), the one read furthest ahead first (a ready task reads before a
   waiting one); the inputs of the next task to run go last.

dask's workers spill least recently used first (``zict.Buffer``), whatever is queued: a
shuffle's split, read in turn by one task per output partition, is then written out and read
back once per reader.
"""
from __future__ import annotations

import heapq
from collections.abc import Collection

_ABSENT = object()


class SpillOrder:
    """The order in which the values in memory spill (see the module's docstring). Every
    operation is O(1), or O(log n) amortised for keys with a planned read (a heap whose
    outdated entries are dropped when they surface, and rebuilt when they outnumber the live
    ones)."""

    def __init__(self) -> None:
        self.heavy: dict[str, None] = {}  # heavier than the target alone
        self.done: dict[str, None] = {}  # read by every task queued for it: LRU first
        self.idle: dict[str, None] = {}  # no read planned, none done yet: LRU first
        self.planned: dict[str, None] = {}  # in memory with a read planned
        self._when: dict[str, tuple[int, int]] = {}  # key -> its next read, negated
        self._heap: list[tuple[tuple[int, int], str]] = []  # (negated when, key): latest first

    def __contains__(self, key: object) -> bool:
        return key in self.planned or key in self.idle or key in self.done

    @property
    def heap_entries(self) -> int:
        """Entries in the heap of planned reads, outdated ones included."""
        return len(self._heap)

    def add(self, key: str, heavy: bool = False) -> None:
        """``key`` came into memory (stored, or read back from disk)."""
        if heavy:
            self.heavy[key] = None
        if key in self._when:
            self.planned[key] = None
            self._push(key)
        else:
            self.idle[key] = None

    def remove(self, key: str) -> None:
        """``key`` left memory (spilled, pinned or freed); a planned read stays planned."""
        self.heavy.pop(key, None)
        if self.planned.pop(key, _ABSENT) is _ABSENT and self.idle.pop(key, _ABSENT) is _ABSENT:
            self.done.pop(key, None)

    def touch(self, key: str) -> None:
        """``key`` was read: the most recently used of its kind now."""
        for kind in (self.idle, self.done):
            if kind.pop(key, _ABSENT) is not _ABSENT:
                kind[key] = None
                return

    def plan(self, key: str, when: tuple[int, int] | None, in_memory: bool) -> None:
        """``key``'s next read is ``when`` (smaller: sooner), or none is planned any more."""
        if when is None:
            if self._when.pop(key, None) is not None and self.planned.pop(key, _ABSENT) \
                    is not _ABSENT:
                self.done[key] = None
            return
        negated = self._when[key] = (-when[0], -when[1])
        if in_memory:
            if key not in self.planned:
                if self.idle.pop(key, _ABSENT) is _ABSENT:
                    self.done.pop(key, None)
                self.planned[key] = None
            heapq.heappush(self._heap, (negated, key))
            if len(self._heap) > 2 * len(self.planned) + 64:
                self._compact()

    def forget_plans(self) -> None:
        """No read is planned any more (the store stopped following them)."""
        for key in self.planned:
            self.done[key] = None
        self.planned.clear()
        self._when.clear()
        self._heap.clear()

    def first(self, keep: Collection[str] = ()) -> str | None:
        """The key to spill next, leaving out those in ``keep``."""
        for kind in (self.heavy, self.done, self.idle):
            if kind:
                if not keep:
                    return next(iter(kind))
                for key in kind:
                    if key not in keep:
                        return key
        return self._latest_planned(keep)

    def _push(self, key: str) -> None:
        heapq.heappush(self._heap, (self._when[key], key))
        if len(self._heap) > 2 * len(self.planned) + 64:
            self._compact()

    def _compact(self) -> None:
        """Mostly outdated entries: keep only the live ones."""
        self._heap = [(self._when[k], k) for k in self.planned]
        heapq.heapify(self._heap)

    def _latest_planned(self, keep: Collection[str]) -> str | None:
        heap = self._heap
        kept = []
        found = None
        while heap:
            negated, key = heap[0]
            if key not in self.planned or self._when.get(key) != negated:
                heapq.heappop(heap)  # outdated: planned again since, or left memory
            elif key in keep:
                kept.append(heapq.heappop(heap))
            else:
                found = key
                break
        for entry in kept:
            heapq.heappush(heap, entry)
        return found
