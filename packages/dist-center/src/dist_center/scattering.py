"""Data a client pushes to workers itself (``scatter``), and the workers' reports of keys
they hold: functions over a ``view.Center``, as ``sharing``'s are.

The center chooses the workers (``scatter-plan``), the client pushes the data to them, and the
workers report the keys (``keys-added``); a client that agreed ``scatter-done`` reports them
too, at once, so that whatever it sends next finds the data in place.
"""
from __future__ import annotations

from dist_protocol.messages import (FreeKeys, KeysAdded, ScatterDone, ScatterPlan,
                                    ScatterPlanReply)

from . import queries
from .records import TaskState
from .view import Center


def scatter_plan(state: Center, client: str, msg: ScatterPlan, sid: str) -> None:
    targets = queries.scatter_targets(state, msg)
    if not targets:
        if not state.waits.plan_waits(state, client, msg):  # (else answered with a worker)
            state.send(client, ScatterPlanReply(id=msg.id, targets={}))
        return
    for key in msg.keys:
        ts = state.tasks.get(key)
        if ts is not None and ts.state in ("released", "lost"):
            # Scattered data takes the key over: keep the task only as its dependents'
            # input, or not at all.
            if ts.dependents:
                ts.spec = None  # (scattered data from now on)
                state.transitions(state.unlink_inputs(ts), sid)
            else:
                state.transition(ts, "forgotten", sid, True)
            ts = state.tasks.get(key)
        if ts is None:
            ts = state.tasks[key] = TaskState(key, None, next(state.task_order),
                                              state.prefix_of(key))
        if ts.state in ("released", "lost"):
            state.transition(ts, "scattering", sid)
        state.want(client, ts)
    state.send(client, ScatterPlanReply(id=msg.id, targets=targets))


def scatter_done(state: Center, client: str, msg: ScatterDone, sid: str) -> None:
    """The client pushed data and the workers confirmed: record it now, as the workers' own
    reports would (they follow, and change nothing)."""
    by_worker: dict[str, dict[str, int]] = {}
    for key, addresses in msg.who_has.items():
        for address in addresses:
            by_worker.setdefault(address, {})[key] = msg.nbytes.get(key, 0)
    for address, keys in by_worker.items():
        if address in state.workers:
            keys_added(state, address, KeysAdded(keys=keys), sid)


def keys_added(state: Center, address: str, msg: KeysAdded, sid: str) -> None:
    worker = state.workers[address]
    unwanted = []
    for key, nbytes in msg.keys.items():
        ts = state.tasks.get(key)
        if ts is None:
            unwanted.append(key)
        elif ts.state == "scattering":
            state.transition(ts, "memory", sid, (address, nbytes))
        elif ts.state == "memory":
            ts.nbytes = ts.nbytes or nbytes
            state.add_replica(ts, worker)
        else:
            unwanted.append(key)
    if unwanted:
        state.send(address, FreeKeys(keys=unwanted))
