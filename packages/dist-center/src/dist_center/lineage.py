"""Lineage, release and failure: what becomes of a task, its inputs and its dependents when
its data is lost, when it fails, and when nobody needs it any more.

Functions over a ``CenterState`` (they are part of its ``handle``; nothing else calls them).
Chains of tasks can be far longer than Python's recursion limit, so every walk along the
graph uses a stack or a work list, never recursion.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from dist_protocol.messages import KeyLost, KeyRecomputing, TaskErred

from .records import ACTIVE, NONE, TaskState, added, discard

if TYPE_CHECKING:
    from .state import CenterState


def recompute(state: CenterState, ts: TaskState) -> None:
    """Bring ``ts`` back to memory from its lineage: wait for (and recompute) its inputs,
    depth first in the order the task names them."""
    stack = [ts]
    while stack:
        ts = stack.pop()
        if ts.spec is None:
            lose(state, [ts], "scattered data has no lineage to recompute it from")
            continue
        state._set_state(ts, "waiting")
        ts.waiting_on = NONE
        released = []
        for dep in ts.deps:
            dts = state.tasks[dep]
            if dts.state == "memory":
                continue
            ts.waiting_on = added(ts.waiting_on, dep)
            if dts.state == "released":
                released.append(dts)
            elif dts.state == "lost":
                lose_dependents(state, ts, dts)
                break  # its released inputs stay so: nothing needs them now
            elif dts.state == "erred" and dts.error is not None:
                fail_with(state, ts, dts.error)
                break
        else:
            if not ts.waiting_on:
                state._place(ts)
            stack.extend(dts for dts in reversed(released) if dts.state == "released")


def lose(state: CenterState, lost: list[TaskState], why: str) -> None:
    """Every copy of these tasks' data is gone: recompute what has lineage and is needed;
    scattered data is lost for good, and so is everything waiting for it.

    All are marked gone before any is recomputed, so a recomputation never counts on an
    input that is about to be found lost too.
    """
    for ts in lost:
        for dep_key in ts.dependents:
            dts = state.tasks[dep_key]
            if dts.state == "processing":
                state._unassign(dts)
            if dts.state in ("waiting", "queued", "no-worker"):
                dts.waiting_on = added(dts.waiting_on, ts.key)
                if dts.state != "waiting":
                    state.unrunnable.discard(dts.key)
                    state._set_state(dts, "waiting")
        if ts.spec is not None:
            state._set_state(ts, "released")
        else:
            ts.lost_message = f"data for {ts.key} was lost: {why}"
            state._set_state(ts, "lost")
    for ts in lost:
        if ts.spec is None:
            for client in ts.wanted_by:
                state._send(client, KeyLost(key=ts.key, message=ts.lost_message))
            lose_dependents(state, None, ts)
        elif ts.state == "released" and needed(state, ts):
            # Clients holding it must not believe it finished while it is computed again.
            for client in ts.wanted_by:
                if client in state.told_of_recomputing:
                    state._send(client, KeyRecomputing(key=ts.key))
            recompute(state, ts)


def lose_dependents(state: CenterState, first: TaskState | None, cause: TaskState) -> None:
    """``first`` (or else every active dependent of ``cause``) and everything waiting on it
    can never run: ``cause``, an input, is lost for good."""
    stack = [first] if first is not None else [state.tasks[k] for k in cause.dependents]
    gone = []
    while stack:
        ts = stack.pop()
        if ts.state not in ACTIVE:
            continue
        if ts.state == "processing":
            state._unassign(ts)
        state.unrunnable.discard(ts.key)
        ts.lost_message = f"its input {cause.key} was lost: {cause.lost_message}"
        state._set_state(ts, "lost")
        gone.append(ts)
        for client in ts.wanted_by:
            state._send(client, KeyLost(key=ts.key, message=ts.lost_message))
        stack.extend(state.tasks[k] for k in ts.dependents)
    # Inputs computed only for these tasks are no longer needed.
    for ts in gone:
        for dep in ts.deps:
            if dep in state.tasks:
                maybe_release(state, state.tasks[dep])


def in_cycles(fresh: list[TaskState]) -> list[TaskState]:
    """The tasks of ``fresh`` that wait, directly or not, on themselves or on such a task.

    The Python client never sends a cycle (keys hash their inputs); a client written from the
    spec may, and its tasks would otherwise wait forever.
    """
    by_key = {ts.key: ts for ts in fresh}
    waiting_on = {key: len(set(ts.deps) & by_key.keys()) for key, ts in by_key.items()}
    ready = [key for key, count in waiting_on.items() if count == 0]
    if len(ready) == len(by_key):
        return []
    while ready:
        for dependent in by_key[ready.pop()].dependents:
            if dependent in waiting_on:
                waiting_on[dependent] -= 1
                if waiting_on[dependent] == 0:
                    ready.append(dependent)
    return [by_key[key] for key, count in waiting_on.items() if count > 0]


def fail(state: CenterState, ts: TaskState, exception_type: str, message: str) -> None:
    fail_with(state, ts, TaskErred(key=ts.key, exception_type=exception_type, message=message))


def fail_with(state: CenterState, ts: TaskState, error: TaskErred) -> None:
    """``ts`` and everything waiting on it err with ``error``."""
    stack = [ts]
    erred = []
    seen: set[str] = set()  # a client may submit a cycle, even a task that depends on itself
    while stack:
        current = stack.pop()
        if current.key in seen or (current.state not in ACTIVE and current is not ts):
            continue
        seen.add(current.key)
        if current.state == "processing":
            state._unassign(current)
        state.unrunnable.discard(current.key)
        state._set_state(current, "erred")
        current.error = error
        erred.append(current)
        state.erred_by_prefix[current.prefix] += 1
        for client in current.wanted_by:
            state._send(client, replace(error, key=current.key))
        stack.extend(state.tasks[k] for k in current.dependents)
    for current in erred:
        for dep in current.deps:
            if dep in state.tasks:
                maybe_release(state, state.tasks[dep])


def needed(state: CenterState, ts: TaskState) -> bool:
    if ts.wanted_by:
        return True
    tasks = state.tasks
    return any(tasks[k].state in ACTIVE for k in ts.dependents)


def maybe_release(state: CenterState, ts: TaskState) -> None:
    """Drop ``ts``'s data (and the task, if nothing depends on it) once nobody needs it."""
    if needed(state, ts):
        return
    was = ts.state
    if was == "processing":
        state._unassign(ts)
    if was == "memory":
        freed = []
        for address in ts.who_has:
            worker = state.workers.get(address)
            if worker is not None:
                worker.has_what.discard(ts.key)
                worker.nbytes -= ts.nbytes
                freed.append(address)
        ts.who_has = NONE
        for address in freed:
            state._free(address, ts.key)
    state.unrunnable.discard(ts.key)
    if ts.state != "released":
        state._set_state(ts, "released")
    if not ts.dependents:
        forget(state, ts)


def forget(state: CenterState, ts: TaskState) -> None:
    if state.tasks.pop(ts.key, None) is ts and ts.counts is not None:
        ts.counts[ts.state] -= 1
    state.unrunnable.discard(ts.key)
    unlink_inputs(state, ts)


def unlink_inputs(state: CenterState, ts: TaskState) -> None:
    """``ts`` no longer reads its inputs; those nothing else reads may go.

    Forgetting a task can free its inputs, whose forgetting frees theirs, and so on down
    a chain; the outermost call works through them one by one instead of recursing.
    """
    deps, ts.deps = ts.deps, ()
    for dep in deps:
        dts = state.tasks.get(dep)
        if dts is not None:
            discard(dts.dependents, ts.key)
            if not dts.dependents:
                state._unlinked.append(dts)
    if state._releasing_unlinked:
        return
    state._releasing_unlinked = True
    try:
        while state._unlinked:
            maybe_release(state, state._unlinked.pop())
    finally:
        state._releasing_unlinked = False
