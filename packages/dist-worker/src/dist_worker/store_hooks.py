"""What the worker's state machine asks of the mapping that holds its values. A store that
spills (``store.py``) says where each value is, reads large ones back on a thread, and plans
what to spill by the reads to come; a plain dict holds everything in memory, and stand-ins
answer for it: nothing is on disk, nothing is planned."""
from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any


class StoreHooks:
    """The calls of ``data`` the state machine makes, each its own or a stand-in's."""

    def __init__(self, data: Any):
        plan_use = getattr(data, "plan_use", None)
        # When each input will next be read by a task here: a store that spills is told, so
        # that it spills what is read last (a plain dict has nothing to decide).
        self.plan_use: Callable[[str, tuple[int, int] | None], None] = (
            plan_use if callable(plan_use) else _no_plan)
        # Whether any of some values, or one, is on disk (the ready tasks' order asks).
        any_on_disk, on_disk = (getattr(data, name, None) for name in ("any_on_disk",
                                                                       "on_disk"))
        self.any_on_disk: Callable[[Collection[str]], bool] | None = (
            any_on_disk if callable(any_on_disk) and callable(on_disk) else None)
        self.on_disk: Callable[[str], bool] = on_disk if callable(on_disk) else _nowhere
        # Which of those are large enough to read back on a thread, and how a value read so
        # comes back into the store.
        large_on_disk, restore = (getattr(data, name, None)
                                  for name in ("to_read_on_thread", "restore"))
        self.large_on_disk: Callable[[Collection[str]], list[str]] = (
            large_on_disk if callable(large_on_disk) else _none_of)
        self.restore: Callable[[str, Any, int], Any] = (restore if callable(restore)
                                                        else _as_read)
        # The weight of the value about to be stored under a key, weighed on a task's thread
        # (``ExecutionSucceeded.weight``); a plain dict weighs nothing.
        weighed = getattr(data, "weighed", None)
        self.weighed: Callable[[str, int], None] = weighed if callable(weighed) else _no_weight
        # Whether the store says when it starts and stops following the reads (``on_watch``).
        self.watches = (callable(plan_use) and self.any_on_disk is not None
                        and hasattr(data, "on_watch"))


def _no_plan(key: str, when: tuple[int, int] | None) -> None:
    pass


def _no_weight(key: str, weight: int) -> None:
    pass


def _nowhere(key: str) -> bool:
    return False


def _none_of(keys: Collection[str]) -> list[str]:
    return []


def _as_read(key: str, value: Any, nbytes_read: int) -> Any:
    return value


__all__ = ["StoreHooks"]
