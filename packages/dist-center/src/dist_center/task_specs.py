"""``task-spec``: the spec of a task a client wants, for the client to run it again in its
own process (dask's ``recreate_task_locally`` and ``recreate_error_locally``).

An erred task's error may have begun in an input: a task whose input erred errs with that
input's error without running. With ``erred`` the center follows erred inputs back to a task
whose own inputs did not err -- the one whose run raised -- and gives its spec.
"""
from __future__ import annotations

from dist_protocol.messages import GetTaskSpec, TaskSpecReply

from .records import TaskState
from .view import Center


def answer(state: Center, client: str, msg: GetTaskSpec) -> TaskSpecReply:
    ts = state.tasks.get(msg.key)
    if ts is None or msg.key not in state.clients.get(client, ()):
        return TaskSpecReply(id=msg.id, error=f"{msg.key!r} is not a key this client holds")
    if msg.erred:
        if ts.state != "erred":
            return TaskSpecReply(id=msg.id, error=f"{msg.key!r} has not erred (it is "
                                                  f"{ts.state})")
        ts = where_error_began(state, ts)
    if ts.spec is None:
        return TaskSpecReply(id=msg.id, error=f"{ts.key!r} is scattered data, not a task")
    return TaskSpecReply(id=msg.id, task=ts.spec)


def where_error_began(state: Center, ts: TaskState) -> TaskState:
    """The first erred task found behind ``ts``, following erred inputs in the order the
    spec names them, whose own inputs did not err."""
    seen = {ts.key}
    while True:
        erred_input = next((dts for dep in ts.deps
                            if (dts := state.tasks.get(dep)) is not None
                            and dts.state == "erred" and dts.key not in seen), None)
        if erred_input is None:
            return ts
        seen.add(erred_input.key)
        ts = erred_input
