"""The tasks ready to run on a worker, and which of them runs next.

The highest priority first (dask's order, then arrival), with one exception on a worker that
spills: a task with an input only on disk waits while a task whose inputs are all in memory
can run. The tasks passed over run in priority order once none in memory is left, and when a
value comes back from disk for one of them, its other readers whose inputs are then all in
memory go ahead of the rest (``promote``).

Why: a task shuffle splits each group's output into one piece per output partition, and in
priority order the pieces of more groups are taken in turn than fit in memory, so a group
spilled to make room is read back once for each of its next few readers. Taken in memory
first, a group is split by all its readers while it is in memory, whether it never left or
was just read back, and each spilled byte is read back about once.

A task with inputs both in memory and on disk waits too. That has a cost: its inputs in
memory may spill while it waits (``x + x.T`` on an array persisted beyond memory, whose task
reads a chunk from disk and its mirror fetched from the other worker, reads back about a
sixth more). Letting such tasks run in their turn was tried: a shuffle's joins then read
their pieces back in between a group's splits, and groups were read back up to five times
again.

A task passed over waits at most ``PATIENCE`` seconds (the oldest such task then runs
whatever is in memory), so that a steady stream of tasks in memory cannot hold it back for
ever. No I/O: whether a value is on disk is asked of the store (``any_on_disk``), and only
while the store may have anything there (``consult``): far from spilling, priority alone.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Collection, Iterator
from typing import Any, Generic, Protocol, TypeVar

# Seconds a task with an input on disk waits while others run ahead of it: a few tasks of a
# shuffle's stage, enough to split a group read back, never long enough to starve it.
PATIENCE = 2.0


class ReadyTask(Protocol):
    key: str
    state: str
    message: Any
    priority: tuple[int, int]


Task = TypeVar("Task", bound=ReadyTask)


class ReadyQueue(Generic[Task]):
    def __init__(self, any_on_disk: Callable[[Collection[str]], bool] | None = None):
        # None: every value is in memory (a plain dict), the priority order alone decides.
        self._any_on_disk = any_on_disk
        # (with ``passed_over``, what the state tests for emptiness: a test of both costs no
        # call, where ``len`` of the queue is one, up to three times a task)
        self.heap: list[tuple[tuple[int, int], Task]] = []
        # Passed over for an input on disk: task -> when first passed over (oldest first).
        self.passed_over: dict[Task, float] = {}
        # (the same task may come back to this heap: the count keeps two entries apart)
        self._passed_heap: list[tuple[tuple[int, int], int, Task]] = []
        self._count = itertools.count()

    def __len__(self) -> int:
        return len(self.heap) + len(self.passed_over)

    def __iter__(self) -> Iterator[Task]:
        """The tasks queued, in no particular order (outdated entries included)."""
        for _, ts in self.heap:
            yield ts
        yield from self.passed_over

    def consult(self, any_on_disk: Callable[[Collection[str]], bool] | None) -> None:
        """Ask ``any_on_disk`` from now on (``None``: nothing is on disk)."""
        self._any_on_disk = any_on_disk

    def push(self, ts: Task) -> None:
        heapq.heappush(self.heap, (ts.priority, ts))

    def pop(self, now: float) -> Task | None:
        """The task to run next, out of the queue (``None``: none is ready). A task is current
        while its ``state`` is ``ready``; the others are dropped as they surface."""
        passed_over = self.passed_over
        if passed_over:
            oldest = next(iter(passed_over))
            if passed_over[oldest] + PATIENCE <= now:
                del passed_over[oldest]
                if oldest.state == "ready":
                    return oldest
        any_on_disk = self._any_on_disk
        heap = self.heap
        while heap:
            _, ts = heapq.heappop(heap)
            if ts.state != "ready" or ts in passed_over:
                continue
            inputs = ts.message.who_has
            if any_on_disk is None or not inputs or not any_on_disk(inputs):
                return ts
            passed_over[ts] = now
            heapq.heappush(self._passed_heap, (ts.priority, next(self._count), ts))
        passed_heap = self._passed_heap
        while passed_heap:
            _, _, ts = heapq.heappop(passed_heap)
            if passed_over.pop(ts, None) is not None and ts.state == "ready":
                return ts
        return None

    def pop_run(self, function: Any, limit: int) -> list[Task]:
        """Up to ``limit`` tasks out of the queue, those ``pop`` would give next one by one,
        as long as each has no inputs, is no actor, and runs ``function`` (mostly the same
        object: a column block's tasks share the payload of their function). A run of a
        map's tasks for the event loop; none while a task passed over waits (``pop`` weighs
        it first)."""
        if self.passed_over:
            return []
        heap = self.heap
        run: list[Task] = []
        while heap and len(run) < limit:
            ts = heap[0][1]
            if ts.state != "ready":
                heapq.heappop(heap)  # (outdated: dropped as ``pop`` drops it)
                continue
            message = ts.message
            if message.who_has or message.actor or (message.function is not function
                                                     and message.function != function):
                break
            heapq.heappop(heap)
            run.append(ts)
        return run

    def promote(self, ts: Task) -> None:
        """``ts``, if passed over, goes back among the others when its inputs are all in
        memory now (one of them read back for another task)."""
        if ts in self.passed_over and not (self._any_on_disk is not None
                                           and self._any_on_disk(ts.message.who_has)):
            del self.passed_over[ts]
            heapq.heappush(self.heap, (ts.priority, ts))

    def discard(self, ts: Task) -> None:
        """``ts`` leaves the queue now (its entries in the heaps go as they surface)."""
        self.passed_over.pop(ts, None)

    def clear(self) -> None:
        self.heap.clear()
        self._passed_heap.clear()
        self.passed_over.clear()
