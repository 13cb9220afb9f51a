"""The center's queue of ready tasks without inputs that wait for a free worker slot.

The highest priority goes first; among equal priorities, the task that arrived first. Tasks
nearly always arrive in the order they will leave: a map's one after another at one priority,
a dask graph's roots in dask's order, each with a priority of its own. Those go into one run
of three parallel deques (key, priority, arrival number; a push is three appends, a pop three
poplefts, about 24 bytes a task): no heap of ``(priority, order, key)`` tuples, sifted through
on every push and pop, for a million queued tasks, and no lane per priority (a dask graph's
million roots would each have had a deque of their own, 1.5 KB a task). A task that comes
out of turn (taken back from a worker that left, a later submission of a higher priority, a
graph's inner task) goes into a heap beside the run; a pop takes the first of the two.

Entries are keys. A task that leaves the ``queued`` state other than by being popped stays in
the queue until its turn comes, and the popper skips it (as a heap with lazy deletion does):
releasing a million queued tasks costs nothing here.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappop, heappush, merge


class ReadyQueue:
    __slots__ = ("run", "_priorities", "_orders", "out_of_turn", "_queued")

    def __init__(self, queued: Callable[[str], bool] = lambda key: True) -> None:
        # The run, in the order it is popped: by priority, highest first, then arrival.
        # (``run`` and ``out_of_turn`` are read outside only to ask whether the queue is
        # empty without a call: ``fill`` asks once a task.)
        self.run: deque[str] = deque()
        self._priorities: deque[int] = deque()  # (the task's own int: no new object a task)
        self._orders: deque[int] = deque()
        # Tasks that came out of turn: a heap of (-priority, order, key).
        self.out_of_turn: list[tuple[int, int, str]] = []
        self._queued = queued  # whether a key's task is still queued

    def push(self, key: str, priority: int, order: int) -> None:
        priorities = self._priorities
        while priorities:
            last = priorities[-1]
            if priority < last or (priority == last and order > self._orders[-1]):
                break
            if self._queued(self.run[-1]):
                heappush(self.out_of_turn, (-priority, order, key))
                return
            # The run's last task left the queue meanwhile (sent along with a partner, or
            # released): its entry goes now, so that the run stays in turn for what follows
            # (a later graph's tasks, behind the left-overs of one before).
            self.run.pop()
            priorities.pop()
            self._orders.pop()
        self.run.append(key)
        priorities.append(priority)
        self._orders.append(order)

    def pop(self) -> str:
        """The key of the first task (IndexError when empty)."""
        others = self.out_of_turn
        if others:
            priorities = self._priorities
            if not priorities:
                return heappop(others)[2]
            first = others[0]
            level = -priorities[0]
            if first[0] < level or (first[0] == level and first[1] < self._orders[0]):
                return heappop(others)[2]
        self._priorities.popleft()
        self._orders.popleft()
        return self.run.popleft()

    def first(self, count: int) -> list[str]:
        """The keys of the first ``count`` tasks still queued, in the order they would be
        popped; the queue is left as it is (but for entries of tasks that left it, which go).

        Called for each task a worker is given (to look for its cousins): the heap is walked
        from its top by popping the entries named and pushing them back, a few steps each,
        not sorted whole -- a graph's half a million roots queued out of turn made every
        such look a sort of them all."""
        found: list[str] = []
        queued = self._queued
        others = self.out_of_turn
        if not others:
            for key in self.run:
                if queued(key):
                    found.append(key)
                    if len(found) >= count:
                        break
            return found
        run = zip(self._priorities, self._orders, self.run)
        head = next(run, None)
        taken: list[tuple[int, int, str]] = []
        try:
            while len(found) < count and (others or head is not None):
                if others and (head is None or others[0][0] < -head[0]
                               or (others[0][0] == -head[0] and others[0][1] < head[1])):
                    entry = heappop(others)
                    if queued(entry[2]):  # (else its task left the queue: the entry goes)
                        taken.append(entry)
                        found.append(entry[2])
                else:
                    assert head is not None
                    if queued(head[2]):
                        found.append(head[2])
                    head = next(run, None)
        finally:
            for entry in taken:
                heappush(others, entry)
        return found

    def clear(self) -> None:
        self.run.clear()
        self._priorities.clear()
        self._orders.clear()
        self.out_of_turn.clear()

    def __len__(self) -> int:
        return len(self.run) + len(self.out_of_turn)

    def __bool__(self) -> bool:
        return bool(self.run) or bool(self.out_of_turn)

    def __contains__(self, key: object) -> bool:  # (a walk through the queue: for checks)
        return key in self.run or any(key == other[2] for other in self.out_of_turn)

    def __iter__(self) -> Iterator[str]:
        """The keys in the order they would be popped."""
        run = zip((-p for p in self._priorities), self._orders, self.run)
        for _, _, key in merge(run, sorted(self.out_of_turn)):
            yield key

    def __repr__(self) -> str:
        return f"<ReadyQueue {list(self)}>"
