"""What a client's ``cancel`` takes with it, and for whom.

A cancel lets go of the keys for the client that sends it, which hears ``key-cancelled`` for
each key it named. Besides, as dask's ``cancel``:

- with feature ``cancel-dependents``, a key that no holder but the client wants goes with the
  tasks reading it, directly or through other tasks, that no other holder wants either: the
  client lets go of those it holds and is told each is cancelled. A key or task that another
  client, a dataset or ``fire-and-forget`` holds goes on, and so does what it reads;
- with ``force``, every holder lets go of the keys and of every task reading them.

Which tasks go is decided by the pure functions below from the graph alone; ``cancel`` applies
the decision as releases, so that the transition table does the rest (tasks taken back from
their workers, inputs nobody needs any more forgotten).
"""
from __future__ import annotations

from collections.abc import Iterable

from dist_protocol.messages import Cancel, KeyCancelled, Release

from . import sharing
from .records import CenterView, TaskState
from .view import Center

FEATURE = "cancel-dependents"

# States of a task that has not started running anywhere (what `cancel pending_only` cancels).
NOT_STARTED = frozenset({"waiting", "queued", "no-worker", "released"})


def only_for(ts: TaskState, client: str) -> bool:
    """No holder but ``client`` wants ``ts`` (perhaps nobody: an input kept for a reader)."""
    wanted_by = ts.wanted_by
    return not wanted_by or (len(wanted_by) == 1 and client in wanted_by)


def dependents_cancelled(view: CenterView, client: str, keys: Iterable[str]) -> list[str]:
    """The tasks that a cancel of ``keys`` by ``client`` takes with it (in the order found):
    those reading a key that ``client`` alone holds, directly or through tasks that no other
    holder wants, and that no other holder wants themselves."""
    tasks = view.tasks
    stack = [ts for key in keys
             if (ts := tasks.get(key)) is not None and client in ts.wanted_by
             and only_for(ts, client)]
    found: dict[str, None] = {}
    while stack:
        for key in stack.pop().dependents:
            dts = tasks.get(key)
            if key not in found and dts is not None and only_for(dts, client):
                found[key] = None
                stack.append(dts)
    return list(found)


def reading(view: CenterView, keys: Iterable[str]) -> dict[str, TaskState]:
    """``keys`` and every task reading them, however indirectly (those the center knows)."""
    tasks = view.tasks
    found: dict[str, TaskState] = {}
    stack = [key for key in keys if key in tasks]
    while stack:
        key = stack.pop()
        if key not in found:
            found[key] = ts = tasks[key]
            stack.extend(dependent for dependent in ts.dependents if dependent in tasks)
    return found


def cancel(state: Center, client: str, msg: Cancel, sid: str) -> None:
    keys = msg.keys
    if msg.force:
        _cancel_for_everyone(state, client, keys, sid)
        return
    dependents: list[str] = []
    if msg.pending_only:  # running and finished tasks go on (concurrent.futures' shutdown)
        keys = [key for key in keys
                if (ts := state.tasks.get(key)) is None or ts.state in NOT_STARTED
                or ts.state == "processing" and ts.waiting_on]  # (sent ahead of inputs)
    elif client in state.cancels_dependents:
        named = set(keys)
        wants = state.clients.get(client, ())
        dependents = [key for key in dependents_cancelled(state, client, keys)
                      if key in wants and key not in named]
    state.release(client, Release(keys=keys), sid)
    for key in keys:
        state.send(client, KeyCancelled(key=key))
    if dependents:
        state.release(client, Release(keys=dependents), sid)
        for key in dependents:
            state.send(client, KeyCancelled(key=key))


def _cancel_for_everyone(state: Center, client: str, keys: list[str], sid: str) -> None:
    """dask's ``cancel(force=True)``: ``keys`` and every task that reads them, however
    indirectly, are let go of by every holder, and each client holding one is told it
    is cancelled. The client asking hears of each key it named, as with any cancel."""
    told = {(client, key) for key in keys}
    for key in keys:
        state.send(client, KeyCancelled(key=key))
    for key, ts in reading(state, keys).items():
        for holder in list(ts.wanted_by):
            if not sharing.is_holder(holder) and (holder, key) not in told:
                state.send(holder, KeyCancelled(key=key))
            state.release(holder, Release(keys=[key]), sid)
