"""A center started again on its state directory: sessions resumed, workers awaited, failures
replayed. Functions over a ``view.Center`` (the ``CenterState``), as ``sharing``'s are;
``store`` and the server's replay of its journal are the I/O around them.

After ``Recovering`` (the journal replayed), the clients the center knew are *detached*: each
session waits for a connection that resumes it (``session`` with ``resume``), and those not
resumed by ``DetachedTimedOut`` are closed. No task is sent to a worker until the workers
registered before the restart are back, or ``RecoveryTimedOut``: a worker coming back may hold
the result already, and it would otherwise be computed twice.
"""
from __future__ import annotations

from dist_protocol.messages import Session, SessionReply

from .events import DetachedTimedOut, Recovering, RecoveryTimedOut, TaskFailed
from .records import ACTIVE, joined, left
from .sharing import is_holder
from .view import Center


def recovering(state: Center, event: Recovering, sid: str) -> None:
    state.durable = True
    state.detached = {client for client in state.clients if not is_holder(client)}
    state.awaiting_workers = set(event.workers) - state.workers.keys()
    state.recovering = bool(state.awaiting_workers)


def worker_back(state: Center, address: str, sid: str) -> None:
    """A worker registered: the last of those awaited ends the recovery."""
    if state.recovering:
        state.awaiting_workers.discard(address)
        if not state.awaiting_workers:
            recovered(state, sid)


def recovery_timed_out(state: Center, event: RecoveryTimedOut, sid: str) -> None:
    if state.recovering:
        recovered(state, sid)


def recovered(state: Center, sid: str) -> None:
    """The workers from before are back (or given up on): run what is not held."""
    state.recovering = False
    state.awaiting_workers.clear()
    state.retry_unrunnable(sid)
    for worker in list(state.workers.values()):
        state.fill(worker, sid)


def detached_timed_out(state: Center, event: DetachedTimedOut, sid: str) -> None:
    for client in sorted(state.detached):
        state.forget_client(client, sid)


def task_failed(state: Center, event: TaskFailed, sid: str) -> None:
    ts = state.tasks.get(event.key)
    if ts is not None and ts.state in ACTIVE:
        state.failed(ts, event.error, sid)


def session(state: Center, client: str, msg: Session, sid: str) -> None:
    """A connection says which session it is: a client that lost the center before takes its
    detached session over (its keys, wanted still, are reported as they are now)."""
    previous = msg.resume
    resumed = previous is not None and previous in state.detached and previous != client
    name = client
    if resumed:
        assert previous is not None
        state.detached.discard(previous)
        _rename_client(state, client, previous)
        name = previous
    wants = state.clients.get(name, set())
    unknown = [key for key in msg.keys or () if key not in wants]
    state.send(client, SessionReply(id=msg.id, client=name, durable=state.durable,
                                    resumed=resumed, unknown=unknown))
    if resumed:
        for key in wants:
            state.report_existing(name, state.tasks[key])


def _rename_client(state: Center, current: str, previous: str) -> None:
    """The connection ``current`` is the session ``previous`` from now on."""
    keys = state.clients.pop(current, set())
    for key in keys:
        ts = state.tasks[key]
        ts.wanted_by = joined(left(ts.wanted_by, current), previous, state.alone)
    state.clients.setdefault(previous, set()).update(keys)
    for clients in (state.told_of_recomputing, state.cancels_dependents,
                    state.worker_feed.watchers, state.worker_feed.status_watchers):
        if current in clients:
            clients.discard(current)
            clients.add(previous)
    if current in state.small_values_for:
        state.small_values_for[previous] = state.small_values_for.pop(current)
