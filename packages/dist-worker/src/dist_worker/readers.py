"""When each value held or awaited here will next be read by a task queued on this worker.

A task reads its inputs from the moment it is sent here (``waiting`` or ``ready``) until it
finishes; tasks run about in the order of their ``when``: its priority, then arrival, ready
tasks before waiting ones (``readyqueue`` runs those with inputs in memory first). A value's
next read is the soonest ``when`` among its queued readers. The worker's
store spills the values read furthest ahead first, so that a value about to be read is not the
one written to disk (and a value read by many tasks in turn, as a shuffle's split is, does
not go back and forth once per reader as it would least recently used first).

Each key keeps a heap of ``(when, task)``; a task that leaves is removed lazily, when it
reaches the top, so adding or removing a reader costs ``O(log readers)`` amortised. No I/O:
changes of a key's next read are reported to ``on_change``.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable

When = tuple[int, int]


class UpcomingReads:
    def __init__(self, on_change: Callable[[str, When | None], None]):
        self._on_change = on_change
        self._queued: dict[str, When] = {}  # task key -> its when, while it may read
        self._reads: dict[str, list[tuple[When, str]]] = {}  # input key -> heap of readers

    def next_read(self, key: str) -> When | None:
        heap = self._reads.get(key)
        return heap[0][0] if heap else None

    def readers(self, key: str) -> list[str]:
        """The tasks queued here that will read ``key``, soonest first."""
        queued = self._queued
        return [task for when, task in sorted(self._reads.get(key, ()))
                if queued.get(task) == when]

    def add(self, task: str, when: When, inputs: Iterable[str]) -> None:
        """``task`` is queued here and will read ``inputs`` (again: nothing changes)."""
        if task in self._queued:
            return
        self._queued[task] = when
        reads = self._reads
        for key in inputs:
            heap = reads.get(key)
            if heap is None:  # the usual case: its first reader
                reads[key] = [(when, task)]
                self._on_change(key, when)
                continue
            entry = (when, task)
            heapq.heappush(heap, entry)
            if heap[0] is entry:
                self._on_change(key, when)

    def plan(self, task: str, when: When, inputs: Collection[str]) -> None:
        """``task`` is queued here and will read ``inputs`` at ``when``, whether it was
        queued before (at another ``when``) or not."""
        before = self._queued.get(task)
        if before == when:
            return
        if before is not None:
            self.remove(task, inputs)
        self.add(task, when, inputs)

    def remove(self, task: str, inputs: Iterable[str]) -> None:
        """``task`` finished or left: it reads none of ``inputs`` any more."""
        when = self._queued.pop(task, None)
        if when is None:
            return
        for key in inputs:
            heap = self._reads.get(key)
            if not heap or heap[0][1] != task or heap[0][0] != when:
                continue  # not the soonest reader: its entry goes when it surfaces
            if len(heap) == 1:  # the usual case: its only reader
                del self._reads[key]
                self._on_change(key, None)
                continue
            heapq.heappop(heap)
            while heap and self._queued.get(heap[0][1]) != heap[0][0]:
                heapq.heappop(heap)
            if heap:
                self._on_change(key, heap[0][0])
            else:
                del self._reads[key]
                self._on_change(key, None)

    def clear(self) -> None:
        keys = list(self._reads)
        self._queued.clear()
        self._reads.clear()
        for key in keys:
            self._on_change(key, None)
