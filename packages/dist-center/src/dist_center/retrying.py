"""``retry``: erred tasks a client wants run again, as dask's ``Client.retry``.

A task errs on its own or because an input erred before it (the error spreads to what reads
it). Retrying a key runs again the key and every erred input behind it, each with the
retries its spec gives: they go back to ``released`` and are brought back from their lineage,
as a lost result is, and the clients that want them hear of them as of any key that settles.
"""
from __future__ import annotations

from dist_protocol.messages import Retry

from .records import TaskState
from .view import Center


def retry(state: Center, client: str, msg: Retry, sid: str) -> None:
    wants = state.clients.get(client, set())
    again: dict[str, TaskState] = {}
    stack = [state.tasks[key] for key in msg.keys
             if key in wants and key in state.tasks and state.tasks[key].state == "erred"]
    while stack:
        ts = stack.pop()
        if ts.key in again:
            continue
        again[ts.key] = ts
        stack.extend(dts for dep in ts.deps
                     if (dts := state.tasks.get(dep)) is not None and dts.state == "erred")
    for ts in again.values():
        state.transition(ts, "released", sid)
        ts.error = None
        if ts.spec is not None:
            ts.retries_left = ts.spec.retries
    state.bring_back(sorted(again.values(), key=lambda ts: ts.order), sid)
