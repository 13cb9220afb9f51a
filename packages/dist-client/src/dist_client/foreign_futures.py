"""Futures of another cluster, given to an executor, are refused at the call.

A future names a key on the cluster of the executor that made it. Given to an executor
connected to another center (inside a task's arguments, a graph, a gather or a scatter),
its key means nothing there: the task reading it would fail later, as a dependency the
center does not know. dask refuses a client's futures in another client's calls in the same
way, with a ``ValueError``. Futures of another executor connected to the same center are
valid there, and pass -- once that center has read their tasks: the two executors' messages
travel on two connections, and a task naming a key the center has not heard of yet would
fail as a missing dependency.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dist_protocol.messages import WhoHas

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
    unheard: dict[int, tuple[Any, list[str]]] = {}  # pending keys of other executors here
    for future in futures:
        if type(future) is not Future:
            continue
        executor = future.executor
        if executor is None or executor.core is core:
            continue
        other = executor.core
        if not same_cluster(core, other):
            foreign.setdefault(other.address, []).append(future.name)
        elif future.keystate.status == "pending":
            unheard.setdefault(id(other), (other, []))[1].append(future.name)
    if not foreign:
        for other, keys in unheard.values():
            _until_heard(other, keys)
        return
    address, keys = next(iter(foreign.items()))
    shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
    raise ValueError(
        f"Inputs contain futures that were created by another client: {what} of the "
        f"executor connected to the center at {core.address} was given {len(keys)} "
        f"future(s) of the executor connected to the center at {address} ({shown}). A "
        "future is only valid on the cluster that made it: gather its value with its own "
        "executor and pass the value instead")


def _until_heard(other: Any, keys: list[str]) -> None:
    """Return once the center has read what the client core ``other`` sent before now (its
    submits of ``keys``): it reads each connection in order, so its answer to a question
    asked now says so. Should that fail, the task says what went wrong later."""
    if other.io.in_loop_thread:
        return  # (a callback on its own I/O thread: no waiting there)
    try:
        other.run(other.ask(lambda request: WhoHas(id=request, keys=keys)), other.timeout)
    except Exception:  # noqa: BLE001 -- the center gone, say: the task reports it
        pass


__all__ = ["refuse", "same_cluster"]
