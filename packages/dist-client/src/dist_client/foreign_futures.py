"""Futures of another cluster, given to an executor, are refused at the call.

A future names a key on the cluster of the executor that made it. Given to an executor
connected to another center (inside a task's arguments, a graph, a gather or a scatter),
its key means nothing there: the task reading it would fail later, as a dependency the
center does not know. dask refuses a client's futures in another client's calls in the same
way, with a ``ValueError``. Futures of another executor connected to the same center are
valid there, and pass.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .future import Future

SHOWN_KEYS = 3


def same_cluster(core: Any, other: Any) -> bool:
    """Whether the client cores ``core`` and ``other`` are connected to the same center."""
    if other is core or other.address == core.address:
        return True
    mine, theirs = core.center, other.center  # (one center reached by two names)
    return (mine is not None and theirs is not None
            and mine.peer_address == theirs.peer_address)


def refuse(core: Any, futures: Iterable[Any], what: str) -> None:
    """``ValueError`` if any of ``futures`` belongs to an executor of another cluster than
    ``core``'s; ``what`` names the call that was given them."""
    foreign: dict[str, list[str]] = {}
    for future in futures:
        if type(future) is not Future:
            continue
        executor = future.executor
        if executor is None or executor.core is core:
            continue
        if not same_cluster(core, executor.core):
            foreign.setdefault(executor.core.address, []).append(future.key)
    if not foreign:
        return
    address, keys = next(iter(foreign.items()))
    shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
    raise ValueError(
        f"Inputs contain futures that were created by another client: {what} of the "
        f"executor connected to the center at {core.address} was given {len(keys)} "
        f"future(s) of the executor connected to the center at {address} ({shown}). A "
        "future is only valid on the cluster that made it: gather its value with its own "
        "executor and pass the value instead")


__all__ = ["refuse", "same_cluster"]
