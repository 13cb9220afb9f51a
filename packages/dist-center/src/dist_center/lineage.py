"""Lineage, release and failure: what should become of a task, its inputs and its dependents
when its data is lost, when it fails, and when nobody needs it any more.

Pure functions over a ``CenterView``: they read the graph and return recommendations
(``{key: finish}``, or ``{key: (finish, argument)}``), which ``CenterState`` applies one by one,
depth first in the order given, until none are left. Chains of tasks can be far longer than
Python's recursion limit, and nothing here recurses: a cascade is a recommendation per step.
"""
from __future__ import annotations

from typing import Union

from dist_protocol.messages import TaskErred
from dist_protocol.key_names import shown_key

from .records import ACTIVE, NONE, CenterView, Keys, TaskState, added

Recs = dict[str, Union[str, tuple]]


def needed(view: CenterView, ts: TaskState) -> bool:
    """A client wants it, or a task that will still run reads it."""
    if ts.wanted_by:
        return True
    tasks = view.tasks
    # (a loop, not any() over a generator: asked several times for each task of a graph)
    for key in ts.dependents:
        if tasks[key].state in ACTIVE:
            return True
    return False


def inputs_to_wait_for(view: CenterView, ts: TaskState) -> tuple[Keys, Recs]:
    """Bringing ``ts`` back from its lineage: the inputs it must wait for, and what to do.

    Released inputs are recomputed too, depth first in the order the task names them; an input
    lost for good or erred decides ``ts``'s fate at once; with nothing to wait for it runs.
    """
    tasks = view.tasks
    waiting_on: Keys = NONE
    released = []
    for dep in ts.deps:
        dts = tasks[dep]
        if dts.state == "memory":
            continue
        waiting_on = added(waiting_on, dep)
        if dts.state == "released":
            released.append(dep)
        elif dts.state == "lost":
            # Its released inputs stay so: nothing needs them now.
            return waiting_on, {ts.key: ("lost", lost_input(dts))}
        elif dts.state == "erred" and dts.error is not None:
            return waiting_on, {ts.key: ("erred", dts.error)}
    if not waiting_on:
        return waiting_on, {ts.key: "processing"}
    return waiting_on, dict.fromkeys(released, ("waiting", FROM_LINEAGE))


# The argument of a ``waiting`` recommendation that brings a released input back. Applied
# depth first, an input that two waiting tasks share (``z`` reads ``x`` and ``y``, ``y`` reads
# ``x``) is brought back through the first and may be running when the second one's
# recommendation comes: that one is then spent, not a reason to take the task back.
FROM_LINEAGE = "from-lineage"


def lost_input(cause: TaskState) -> str:
    return f"its input {shown_key(cause.key)} was lost: {cause.lost_message}"


def spread(view: CenterView, ts: TaskState, finish: tuple) -> Recs:
    """``ts`` erred or was lost for good: so is every task that would still run on it (the
    last named first, as a stack would take them); then its inputs may go."""
    tasks = view.tasks
    recs: Recs = {}
    for key in reversed(list(ts.dependents)):
        if tasks[key].state in ACTIVE:
            recs[key] = finish
    recs.update(release_inputs(ts))
    return recs


def release_inputs(ts: TaskState) -> Recs:
    """Inputs computed only for ``ts`` are not needed once it no longer runs."""
    return dict.fromkeys(ts.deps, "forgotten")


def cyclic(ts: TaskState) -> TaskErred:
    return TaskErred(key=ts.key, exception_type="CyclicDependency",
                     message=f"task {shown_key(ts.key)} depends on itself through its inputs")


def missing_inputs(ts: TaskState, missing: list[str]) -> TaskErred:
    return TaskErred(key=ts.key, exception_type="MissingDependency",
                     message=f"task {shown_key(ts.key)} depends on "
                             f"{', '.join(map(shown_key, missing))}, which the center "
                             "does not know (released before it was used, or a future of an "
                             "executor connected to another cluster?)")


def in_cycles(fresh: list[TaskState]) -> list[TaskState]:
    """The tasks of ``fresh`` that wait, directly or not, on themselves or on such a task.

    The Python client never sends a cycle (keys hash their inputs); a client written from the
    spec may, and its tasks would otherwise wait forever.
    """
    if len(fresh) == 1:  # (a chain's links come one a submit: no tables for those)
        ts = fresh[0]
        return [ts] if ts.key in ts.deps else []
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
