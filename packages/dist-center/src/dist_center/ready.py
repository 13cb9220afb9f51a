"""The center's queue of ready tasks without inputs that wait for a free worker slot.

The highest priority goes first; among equal priorities, the task that arrived first. Tasks of
one priority arrive in order (a map's tasks one after another), so each priority keeps a FIFO
lane and a push is an append, a pop a popleft: no heap of ``(priority, order, key)`` tuples,
sifted through on every push and pop, for a million queued tasks. A task that comes back to the
queue (taken from a worker that left, say) has arrived earlier than those behind it and goes
to its place by a binary search.

Entries are keys. A task that leaves the ``queued`` state other than by being popped stays in
its lane until its turn comes, and the popper skips it (as a heap with lazy deletion does):
releasing a million queued tasks costs nothing here.
"""
from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Iterator


class ReadyQueue:
    __slots__ = ("_priorities", "_keys", "_orders")

    def __init__(self) -> None:
        self._priorities: list[int] = []  # those with a lane, highest first (negated: sorted)
        self._keys: dict[int, deque[str]] = {}  # negated priority -> keys in arrival order
        self._orders: dict[int, deque[int]] = {}  # the same lanes' arrival numbers

    def push(self, key: str, priority: int, order: int) -> None:
        level = -priority
        keys = self._keys.get(level)
        if keys is None:
            self._keys[level] = deque((key,))
            self._orders[level] = deque((order,))
            insort(self._priorities, level)
            return
        orders = self._orders[level]
        if order > orders[-1]:
            keys.append(key)
            orders.append(order)
        elif order < orders[0]:
            keys.appendleft(key)
            orders.appendleft(order)
        else:
            low, high = 0, len(orders)
            while low < high:
                middle = (low + high) // 2
                if orders[middle] < order:
                    low = middle + 1
                else:
                    high = middle
            keys.insert(low, key)
            orders.insert(low, order)

    def pop(self) -> str:
        """The key of the first task (IndexError when empty)."""
        level = self._priorities[0]
        keys = self._keys[level]
        key = keys.popleft()
        self._orders[level].popleft()
        if not keys:
            del self._keys[level], self._orders[level], self._priorities[0]
        return key

    def clear(self) -> None:
        self._priorities.clear()
        self._keys.clear()
        self._orders.clear()

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._keys.values())

    def __bool__(self) -> bool:
        return bool(self._priorities)

    def __contains__(self, key: object) -> bool:  # (a walk through every lane: for checks)
        return any(key in keys for keys in self._keys.values())

    def __iter__(self) -> Iterator[str]:
        """The keys in the order they would be popped."""
        for level in self._priorities:
            yield from self._keys[level]

    def __repr__(self) -> str:
        return f"<ReadyQueue {list(self)}>"
