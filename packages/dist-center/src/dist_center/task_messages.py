"""The messages the center makes for each task: its compute-task and key-in-memory.

Both are made once or more a task, so they are built without ``__init__``'s second change of
class (see ``records.builder``): positionally, as their fields are declared (the order is
held by a test of the center's).
"""
from __future__ import annotations

from collections.abc import Mapping

from dist_protocol.messages import ComputeTask, KeyInMemory, TaskFinished
from dist_protocol.records import builder
from dist_protocol.serialize import Payload

from .records import TaskState, WorkerInfo

compute_task = builder(ComputeTask)
key_in_memory = builder(KeyInMemory)


def small_value(finished: TaskFinished, forms: tuple[str, ...]) -> Payload | None:
    """The small value in the first of ``forms`` (serializers a client reads) that the worker
    sent it in, if any."""
    for form in forms:
        value = finished.value if form == "pickle" else (
            finished.value_msgpack if form == "msgpack" else None)
        if value is not None:
            return value
    return None


def compute_message(tasks: Mapping[str, TaskState],
                    small_values_for: Mapping[str, tuple[str, ...]],
                    ts: TaskState, worker: WorkerInfo) -> ComputeTask:
    """The compute-task that sends ``ts`` to ``worker``: who holds each of its inputs, those
    it is sent ahead of (still running), and whether a client wants its small value as
    msgpack (``small_values_for``: client -> the forms it reads, in order)."""
    spec = ts.spec
    assert spec is not None
    who_has: dict[str, list[str]] = {}
    nbytes: dict[str, int] = {}
    ahead = None
    if ts.deps:
        for dep in ts.deps:
            dts = tasks[dep]
            who_has[dep] = list(dts.who_has)
            nbytes[dep] = dts.nbytes
        waiting_on = ts.waiting_on
        if waiting_on:
            ahead = [dep for dep in ts.deps if dep in waiting_on]
    msgpack_too = False
    if worker.sends_msgpack_values:
        # A client that wants ``ts`` reads small values as msgpack: the worker is to make
        # that copy (for any other, it would be made and sent to the center for nothing).
        # (Written out here, not a function: one call less a task.)
        for client in ts.wanted_by:
            forms = small_values_for.get(client)
            if forms is not None and "msgpack" in forms:
                msgpack_too = True
                break
    return compute_task(ts.key, spec.function, spec.args, who_has, nbytes, spec.priority,
                        spec.pickled_with, spec.actor or None, ahead, msgpack_too)
