"""Tasks a worker gives back: those asked of a paused worker (its memory is short) and those
a busy worker gives up to be stolen. Functions over a ``view.Center``; ``balance`` decides what
to ask for, ``CenterState.request_steals`` asks.
"""
from __future__ import annotations

from dist_protocol.messages import Heartbeat, StealReply, StealRequest

from . import balance, cancelling, worker_feed
from .view import Center


def heartbeat(state: Center, address: str, msg: Heartbeat, sid: str) -> None:
    worker = state.workers[address]
    could_spill = not worker_feed.cannot_spill(worker)
    worker.metrics = msg.metrics
    state.forget_capacity(address)  # (its memory may have crossed the target)
    paused = bool(msg.metrics.get("paused"))
    if paused and worker.status == "running":
        worker.status = "paused"
        # Its memory is short: ask it for every task it has not started, to place them
        # again among the running workers (no thief chosen: placed afresh when given up).
        keys = balance.evacuation(state, worker)
        if keys:
            for key in keys:
                state.stealing[key] = None
            state.send(worker.address, StealRequest(keys=keys))
    elif not paused and worker.status == "paused":
        worker.status = "running"
        state.retry_unrunnable(sid)
        state.fill(worker, sid)
    if could_spill == bool(worker_feed.cannot_spill(worker)):  # told once each way
        for client, status in state.worker_feed.worker_status(worker):
            state.send(client, status)


def steal_reply(state: Center, address: str, msg: StealReply, sid: str) -> None:
    """The victim gave up ``msg.keys`` (and forgot them): run them on the thieves."""
    for key in msg.kept:
        state.stealing.pop(key, None)
        # It had started: it runs to the end, and a cancel of unstarted tasks leaves it.
        state.cancelling_unstarted.pop(key, None)
    for key in msg.keys:
        thief_address = state.stealing.pop(key, None)
        ts = state.tasks.get(key)
        if ts is None or ts.state != "processing" or ts.processing_on != address:
            state.cancelling_unstarted.pop(key, None)
            continue  # released or done meanwhile; the victim has dropped it already
        state.transition(ts, "waiting", sid, True)
        if key in state.cancelling_unstarted:
            cancelling.given_back(state, key, sid)
            if state.tasks.get(key) is not ts or ts.state != "waiting":
                continue  # nobody else wants it
        if ts.waiting_on:
            continue  # it was sent ahead of its inputs: it waits for them at the center again
        thief = state.workers.get(thief_address or "")
        if thief is not None and balance.may_run_on(state, ts, thief):
            state.transition(ts, "processing", sid, thief.address)
        else:
            state.transition(ts, "processing", sid)
