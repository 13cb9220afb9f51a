"""Work stealing: tasks waiting on a busy worker move to an idle one.

Tasks with inputs go where their inputs are, however busy that worker is, and each worker may
hold a few tasks beyond its threads. When the center's queue is empty and a worker has idle
threads while another has tasks it has not started, the center asks the busy worker to give
some up (``steal-request``). The worker gives up those not yet running (``steal-reply``), and
the center sends them to the idle worker. A task is taken only when moving its inputs costs
less than running it, so stealing never turns cheap local work into expensive transfers.
"""
from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING

from dist_protocol.messages import StealReply, StealRequest

from . import placement

if TYPE_CHECKING:
    from .records import TaskState, WorkerInfo
    from .state import CenterState

# Assumed until tasks of a kind have finished: worth moving unless inputs are large.
UNKNOWN_DURATION = 0.5  # seconds
# Bytes per second assumed between workers; deliberately low. Links may be far slower than
# loopback (another rack, a capped link) and the center does not see transfers, so an input is
# moved to an idle worker only for tasks that run long next to the time it could take.
BANDWIDTH = 10e6
# Below this much queued work on a worker (in seconds per thread), stealing is not worth its
# round trip: the worker will be done before the stolen tasks would start elsewhere.
MIN_BACKLOG = 0.005
MAX_PER_REQUEST = 1000


def expected_duration(state: CenterState, ts: TaskState) -> float:
    seen = state.task_durations.by_prefix.get(ts.prefix)
    if seen:
        count, seconds = seen
        return seconds / count
    return UNKNOWN_DURATION


def balance(state: CenterState) -> None:
    """Ask busy workers to give up waiting tasks for the workers with idle threads."""
    if state.queue or len(state.workers) < 2:
        return  # idle workers take queued work first
    incoming = Counter(state.stealing.values())
    thieves = [w for w in state.workers.values()
               if w.status == "running" and len(w.processing) + incoming[w.address] < w.nthreads]
    if not thieves:
        return
    for thief in sorted(thieves, key=lambda w: len(w.processing) + incoming[w.address]):
        room = state._capacity(thief) - len(thief.processing) - incoming[thief.address]
        victim = _busiest(state, exclude=thief)
        if victim is None:
            return
        keys = _choose(state, victim, thief, room)
        if keys:
            for key in keys:
                state.stealing[key] = thief.address
            incoming[thief.address] += len(keys)
            state._send(victim.address, StealRequest(keys=keys))


def _waiting_on(state: CenterState, worker: WorkerInfo) -> list[str]:
    """Tasks assigned to ``worker`` beyond its threads, newest first, not already asked for."""
    extra = len(worker.processing) - worker.nthreads
    if extra <= 0:
        return []
    newest = itertools.islice(reversed(worker.processing), extra)
    return [key for key in newest if key not in state.stealing]


def _busiest(state: CenterState, exclude: WorkerInfo) -> WorkerInfo | None:
    best, best_backlog = None, MIN_BACKLOG
    for worker in state.workers.values():
        if worker is exclude:
            continue
        waiting = _waiting_on(state, worker)
        if not waiting:
            continue
        sample = state.tasks[waiting[0]]
        backlog = len(waiting) * expected_duration(state, sample) / worker.nthreads
        if backlog > best_backlog:
            best, best_backlog = worker, backlog
    return best


def _choose(state: CenterState, victim: WorkerInfo, thief: WorkerInfo, room: int) -> list[str]:
    waiting = _waiting_on(state, victim)
    # Leave the victim as much as it would take to finish alongside the thief.
    wanted = min(room, MAX_PER_REQUEST, max(1, len(waiting) // 2))
    chosen: list[str] = []
    for key in waiting:
        if len(chosen) >= wanted:
            break
        ts = state.tasks[key]
        if not _may_run_on(state, ts, thief):
            continue
        transfer = placement.bytes_to_move(ts, thief, state.tasks) / BANDWIDTH
        if transfer < expected_duration(state, ts):
            chosen.append(key)
    return chosen


def _may_run_on(state: CenterState, ts: TaskState, worker: WorkerInfo) -> bool:
    if ts.spec is not None and ts.spec.resources:
        return False  # placed only where its resources are free; never moved
    return bool(placement.candidates(ts, {worker.address: worker}, state.names))


def evacuate(state: CenterState, worker: WorkerInfo) -> None:
    """``worker`` paused (its memory is short): ask it for every task it has not started, to
    place them again among the running workers. With none running, they stay where they are:
    this worker is as good a place as the queue to wait for memory."""
    if not any(w.status == "running" for w in state.workers.values() if w is not worker):
        return
    keys = [key for key in worker.processing if key not in state.stealing]
    if keys:
        for key in keys:
            state.stealing[key] = None  # no thief chosen: placed afresh when given up
        state._send(worker.address, StealRequest(keys=keys))


def steal_reply(state: CenterState, victim_address: str, msg: StealReply) -> None:
    """The victim gave up ``msg.keys`` (and forgot them): run them on the thieves."""
    for key in msg.kept:
        state.stealing.pop(key, None)
    victim = state.workers[victim_address]
    for key in msg.keys:
        thief_address = state.stealing.pop(key, None)
        ts = state.tasks.get(key)
        if ts is None or ts.state != "processing" or ts.processing_on != victim_address:
            continue  # released or done meanwhile; the victim has dropped it already
        victim.processing.pop(key, None)
        ts.processing_on = None
        state._slots_freed[victim_address] = None
        state._set_state(ts, "waiting")
        thief = state.workers.get(thief_address or "")
        if thief is not None and _may_run_on(state, ts, thief):
            state._assign(ts, thief)
        else:
            state._place(ts)


def forget_worker(state: CenterState, address: str) -> None:
    """A worker left: its pending steals, either way, will never be answered or used."""
    for key, thief in list(state.stealing.items()):
        ts = state.tasks.get(key)
        if thief == address or ts is None or ts.processing_on in (None, address):
            del state.stealing[key]
