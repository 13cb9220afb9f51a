"""What a client's ``cancel`` takes with it, and for whom.

A cancel lets go of the keys for the client that sends it, which hears ``key-cancelled`` for
each key it named. Besides, as dask's ``cancel``:

- with feature ``cancel-dependents``, a key that no holder but the client wants goes with the
  tasks reading it, directly or through other tasks, that no other holder wants either: the
  client lets go of those it holds and is told each is cancelled. A key or task that another
  client, a dataset or ``fire-and-forget`` holds goes on, and so does what it reads;
- with ``force``, every holder lets go of the keys and of every task reading them.

With ``pending_only`` (concurrent.futures' ``shutdown(cancel_futures=True)``) only the tasks
that have not started go. A task sent to a worker may still wait there for a thread: the
center asks for it back (``steal-request``), and cancels it once the worker says it gave it
up; one the worker had started runs to the end. A worker that leaves before answering ran
none of them to the end: they are back to not started, and cancelled then.

Which tasks go is decided by the pure functions below from the graph alone; ``cancel`` applies
the decision as releases, so that the transition table does the rest (tasks taken back from
their workers, inputs nobody needs any more forgotten).
"""
from __future__ import annotations

from collections.abc import Iterable

from dist_protocol.messages import Cancel, KeyCancelled, Release, StealRequest

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
        keys, on_workers = _unstarted(state, keys)
        _ask_back(state, client, on_workers)
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


def _unstarted(view: CenterView, keys: list[str]) -> tuple[list[str], list[str]]:
    """Of ``keys``, those not started (to cancel now) and those on a worker that may not have
    started them yet (to ask back)."""
    now, on_workers = [], []
    for key in keys:
        ts = view.tasks.get(key)
        if ts is None or ts.state in NOT_STARTED:
            now.append(key)
        elif ts.state == "processing":
            worker = view.workers.get(ts.processing_on or "")
            if ts.waiting_on:
                now.append(key)  # sent ahead of inputs that have not finished: not started
            elif worker is not None and key not in worker.long_running:
                on_workers.append(key)
    return now, on_workers


def _ask_back(state: Center, client: str, keys: list[str]) -> None:
    """Ask the workers for ``keys`` back, to cancel those they had not started (a key
    asked back already, to be stolen, is cancelled when that answer comes)."""
    asked: dict[str, list[str]] = {}
    for key in keys:
        state.cancelling_unstarted.setdefault(key, set()).add(client)
        if key not in state.stealing:
            state.stealing[key] = None
            asked.setdefault(state.tasks[key].processing_on or "", []).append(key)
    for address, named in asked.items():
        state.send(address, StealRequest(keys=named))


def given_back(state: Center, key: str, sid: str) -> None:
    """A worker gave ``key`` up, or left before answering: the clients that asked to cancel
    it if not started are answered, if it has not started elsewhere meanwhile."""
    clients = state.cancelling_unstarted.pop(key, ())
    ts = state.tasks.get(key)
    if not clients or ts is None or ts.state not in NOT_STARTED:
        return
    for client in sorted(clients):
        state.release(client, Release(keys=[key]), sid)
        state.send(client, KeyCancelled(key=key))


def worker_leaving(state: Center, address: str) -> list[str]:
    """The worker at ``address`` leaves: the keys asked back from it to be cancelled, still
    there (for ``given_back`` once they are back to not started). Those released meanwhile
    are forgotten, as their pending steals are (``balance.stale_steals``)."""
    tasks, there = state.tasks, []
    for key in list(state.cancelling_unstarted):
        ts = tasks.get(key)
        if ts is None or ts.processing_on is None:
            del state.cancelling_unstarted[key]
        elif ts.processing_on == address:
            there.append(key)
    return there


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
