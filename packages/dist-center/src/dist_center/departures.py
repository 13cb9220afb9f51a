"""A worker leaves: what it was running and what it alone held. Functions over a
``view.Center`` (the ``CenterState``), as ``recovery``'s are.

The tasks it was running wait again, and its death counts against those that had a thread
there; past ``ALLOWED_FAILURES`` deaths a task fails as ``KilledWorker``. A worker removed for
silence (a task may hold the GIL past the heartbeat timeout) may come back: its removal counts
only once it is known to have died, and a task that silenced ``HOLD_AFTER_SILENT`` workers is
held (see ``held``) rather than sent to the next one. The values only it held are lost: what
has lineage and is still needed is computed again, scattered data is lost for good, and an
actor is made again while it may restart. A worker that restarted for memory, or stopped for
a SIGTERM, names the values it blames: their tasks count its death too
(``memory_restarts``).

``CenterState`` keeps the bookkeeping of the worker itself (its record, names, feeds and
pending requests) and calls ``worker_gone`` for its tasks.
"""
from __future__ import annotations

import itertools

from dist_protocol.key_names import shown_key
from dist_protocol.messages import KeyRecomputing, RestartingForMemory, TaskErred, WorkerTerminated

from . import cancelling, lineage, memory_restarts
from .events import WorkerLeft
from .held import HOLD_AFTER_SILENT
from .records import ACTIVE, NONE, TaskState, WorkerInfo, added, left
from .view import Center

ALLOWED_FAILURES = 3  # deaths of workers while running a task before it fails as KilledWorker


def worker_gone(state: Center, worker: WorkerInfo, event: WorkerLeft, asked_back: list[str],
                sid: str) -> None:
    """``worker`` left (``event``), and is out of ``state.workers``: its tasks run elsewhere,
    ``asked_back`` (asked back from it to be cancelled, never started) go, and what only it
    held is lost."""
    ahead = worker.ahead or ()  # (tasks waiting there for their inputs never ran)
    running = set(itertools.islice((key for key in worker.processing if key not in ahead),
                                   worker.nthreads)) | worker.long_running
    orphans = []
    for key in worker.processing:
        ts = state.tasks[key]
        state.transition(ts, "waiting", sid, True)
        if key in running and not event.graceful:
            ts.died_on = (*ts.died_on, worker.address)
            if event.silent:
                state.silent_deaths.setdefault(worker.address, []).append(key)
                silenced = _silenced_by(state, ts)
                if len(silenced) >= HOLD_AFTER_SILENT:
                    state.transition(ts, "no-worker", (
                        f"held: workers {', '.join(silenced)} went silent running it; "
                        f"it waits for one to come back ({sid})"))
                    state.held.hold(ts, silenced, state.now)
                    continue
            if _deaths(state, ts) >= ALLOWED_FAILURES:
                _killed_worker(state, ts, f"the last: {event.reason}{memory_in_use(worker)}",
                               sid)
                continue
        orphans.append(ts)
    worker.processing.clear()
    worker.brief.clear()
    worker.long_running.clear()
    if worker.ahead:
        worker.ahead.clear()
    state.forget_capacity(worker.address)
    for key in asked_back:
        cancelling.given_back(state, key, sid)
    lost = []
    for key in worker.has_what:
        ts = state.tasks[key]
        ts.who_has = left(ts.who_has, worker.address)
        if ts.actor_host == worker.address and ts.state == "memory":
            for other in ts.who_has:  # copies of its handle lead nowhere now
                holder = state.workers[other]
                holder.has_what.discard(key)
                holder.nbytes -= ts.nbytes
                state.free(other, key)
            ts.who_has = NONE
        if not ts.who_has and ts.state == "memory":
            lost.append(ts)
    worker.has_what.clear()
    state.alone.forget(worker.address)
    if (worker.memory_blame or worker.terminated_blame) and not event.graceful:
        lost = _count_blamed_deaths(state, worker, lost, event.reason, sid)
    lose(state, lost, f"its only copy was on worker {worker.address}, which left "
                      f"({event.reason})", sid)
    for ts in orphans:
        if ts.state == "waiting":
            ts.waiting_on, recs = lineage.inputs_to_wait_for(state, ts)
            state.transitions(recs, sid)
    for other in list(state.workers.values()):
        state.fill(other, sid)
    if state.unrunnable:  # a task pinned to this worker, waiting while it was paused
        state.retry_unrunnable(sid)


def lose(state: Center, lost: list[TaskState], why: str, sid: str) -> None:
    """Every copy of these tasks' data is gone: what waited on them waits again;
    recompute what has lineage and is needed; scattered data is lost for good, and so is
    everything waiting for it.

    All are marked gone before any is recomputed, so a recomputation never counts on an
    input that is about to be found lost too.
    """
    for ts in lost:
        for dep_key in ts.dependents:
            dts = state.tasks[dep_key]
            # (a held task waits for its silent workers; it looks for its inputs once let go)
            if dts.state in ACTIVE and not state.held.holds_back(dts):
                state.transition(dts, "waiting", sid)
                dts.waiting_on = added(dts.waiting_on, ts.key)
        if ts.actor_host is not None and ts.restarts >= (ts.spec and ts.spec.max_restarts
                                                          or 0):
            state.transition(ts, "lost", sid, actor_lost(ts, why))
        elif ts.spec is not None:
            if ts.actor_host is not None:
                ts.restarts += 1  # made again from its constructor: its state is gone
                ts.actor_host = None
            state.transition(ts, "released", sid)
        else:
            state.transition(ts, "lost", sid, f"data for {shown_key(ts.key)} was lost: {why}")
    for ts in lost:
        if ts.state == "released" and lineage.needed(state, ts):
            # Clients holding it must not believe it finished while it is computed again.
            for client in ts.wanted_by:
                if client in state.told_of_recomputing:
                    state.send(client, KeyRecomputing(key=ts.key))
            state.transition(ts, "waiting", sid)


def silent_worker_died(state: Center, event: WorkerLeft, sid: str) -> None:
    """A worker removed for silence closed its connection: it did die. Its removal counts
    against the tasks it was running, and those held for it alone run again."""
    state.silent_deaths.pop(event.worker)
    for ts in state.held.worker_closed(event.worker):
        if _deaths(state, ts) >= ALLOWED_FAILURES:
            _killed_worker(state, ts, f"the last: {event.reason}", sid)
        else:
            let_go_held(state, ts, sid)


def silent_worker_back(state: Center, address: str) -> None:
    """The worker at ``address``, removed for silence, registers again: it had not died,
    so the tasks running there then do not count its removal against them (a task that
    holds the GIL for longer than the heartbeat timeout, several times, would otherwise
    fail as KilledWorker on a worker that never died)."""
    for key in state.silent_deaths.pop(address, ()):
        ts = state.tasks.get(key)
        if ts is not None and address in ts.died_on:
            died_on = list(ts.died_on)
            del died_on[len(died_on) - 1 - died_on[::-1].index(address)]
            ts.died_on = tuple(died_on)


def let_go_held(state: Center, ts: TaskState, sid: str) -> None:
    """Run a task held no longer, once its inputs (lost with a silent worker) are back."""
    state.transition(ts, "waiting", sid)
    ts.waiting_on, recs = lineage.inputs_to_wait_for(state, ts)
    state.transitions(recs, sid)


def restarting_for_memory(state: Center, address: str, msg: RestartingForMemory,
                          sid: str) -> None:
    """The worker exits for its nanny to start it again: what it blames counts once its
    connection closes (``worker_gone``)."""
    worker = state.workers[address]
    worker.memory_blame = dict(msg.keys)
    worker.memory_at_restart = msg.memory


def worker_terminated(state: Center, address: str, msg: WorkerTerminated, sid: str) -> None:
    """The worker stops for a SIGTERM its nanny did not send: the tasks it names count
    its death once its connection closes (``worker_gone``), also one that finished."""
    state.workers[address].terminated_blame = frozenset(msg.keys)


def actor_lost(ts: TaskState, why: str) -> str:
    restarts = f" after {ts.restarts} restarts" if ts.restarts else ""
    return (f"ActorLost: the actor {ts.key} ({ts.type}) is gone{restarts}: {why}; its state "
            "is lost (submit it with max_restarts= to have it made again)")


def memory_in_use(worker: WorkerInfo) -> str:
    """How full the worker's memory was when it last reported, for the error of a task that
    killed it: a worker restarted past its memory limit only shows as a closed connection."""
    memory, limit = worker.metrics.get("memory"), worker.memory_limit
    if not limit or not isinstance(memory, (int, float)) or memory <= 0:
        return ""
    return f", with {memory / limit:.0%} of its memory limit in use when last heard from"


def _silenced_by(state: Center, ts: TaskState) -> list[str]:
    """The workers removed for silence while running ``ts`` that may still come back."""
    return [address for address in dict.fromkeys(ts.died_on)
            if ts.key in state.silent_deaths.get(address, ())]


def _deaths(state: Center, ts: TaskState) -> int:
    """Deaths counted against ``ts``: a silent worker that may come back has not died."""
    return len(ts.died_on) - len(_silenced_by(state, ts))


def _killed_worker(state: Center, ts: TaskState, last: str, sid: str) -> None:
    """``ts`` fails: the text counts the deaths that counted (``_deaths``), and names apart
    the workers removed for silence that may still come back."""
    died = list(ts.died_on)
    silenced = _silenced_by(state, ts)
    for address in silenced:
        del died[len(died) - 1 - died[::-1].index(address)]
    also = f"; silent while running it: {', '.join(silenced)}" if silenced else ""
    state.transition(ts, "erred", sid, TaskErred(
        key=ts.key, exception_type="KilledWorker",
        message=f"task {shown_key(ts.key)} was running on workers that died "
                f"{len(died)} times: {', '.join(died)} ({last}{also}); giving up"))


def _count_blamed_deaths(state: Center, worker: WorkerInfo, lost: list[TaskState],
                         reason: str, sid: str) -> list[TaskState]:
    """``worker`` died blaming values (it restarted for memory, ``memory_restarts``) or
    naming the tasks that may have sent it a SIGTERM (``worker-terminated``): its death
    counts against each such task whose value is lost with it, which errs past the
    allowed deaths instead of being computed again (a running one counted already). The
    lost left to recompute."""
    gave_up = set()
    memory = worker.memory_blame or {}
    blamed = memory.keys() | worker.terminated_blame
    for ts in memory_restarts.blamed_and_lost(blamed, lost):
        ts.died_on = (*ts.died_on, worker.address)
        if _deaths(state, ts) >= ALLOWED_FAILURES:
            gave_up.add(ts.key)
            state.transition(ts, "released", sid)
            if ts.key in memory:
                state.transition(ts, "erred", sid, memory_restarts.killed_for_memory(
                    ts, memory[ts.key], worker))
            else:
                _killed_worker(state, ts, f"the last: {reason}, by a SIGTERM that its "
                                          "worker says it may have sent", sid)
    return [ts for ts in lost if ts.key not in gave_up] if gave_up else lost
