"""The task state machine at the center's heart: the handlers of the transition table.

Every change of a task's state goes through the table ``TRANSITIONS`` (in ``transition_table``)
of ``(start, finish) -> handler``: ``transition(ts, finish, stimulus_id)`` dispatches an
event's move on it. A handler changes the task, queues the messages the change implies, and
returns recommendations
(``{key: finish}``, or ``{key: (finish, argument)}``) for other tasks; ``transitions``
dispatches them on the same table, depth first in the order given, until none are left. What
should follow from a change is decided by pure functions (``lineage``, ``placement``,
``balance``); the states are defined once, in ``records``; the log of ``(key, start, finish,
stimulus_id, time)`` is what ``story`` reads.

The messages a step makes collect in its ``outbox`` (``send``, ``free``); a task's own
messages are built by ``task_messages``; each worker's capacity is kept in ``capacities``.
``feeding`` hands queued tasks to the workers with free slots at the end of a step, ``blocks``
moves a map's plain tasks by the block, and ``CenterState`` (in ``state``) is the machine with
the events that drive it.
"""
from __future__ import annotations

import itertools
from sys import intern
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dist_protocol.messages import (KeyInMemory, KeyLost, Message, TaskErred,
                                    TaskFinished, Transfer)
from dist_protocol.key_names import shown_key

from . import lineage, placement
from .capacities import Capacities
from .durations import TaskDurations
from .held import Held
from .lineage import Recs
from .task_messages import compute_message, key_in_memory, small_value
from .outbox import Outbox, Outgoing
from .ready import ReadyQueue
from .transition_table import TRANSITIONS
from .waits import Waits
from .records import (ACTIVE, NONE, STATES, PrefixNames, Singletons, TaskState, WorkerInfo,
                      joined, left, removed, same_pickled_type)

TRANSITION_LOG = 10_000  # recent (key, start, finish, stimulus_id, time), for story()
STREAM_LOG = 5_000  # recent executions, for the dashboard and get_task_stream()

class InvalidTransition(RuntimeError):
    """A transition the table does not have: a bug in the center, never bad input."""


def start_rank(ts: TaskState) -> tuple[int, int]:
    """Which of two tasks waiting for the same thing starts first, the lower: the higher
    priority, then the earlier arrival (as the queue orders tasks without resources)."""
    return (-ts.spec.priority if ts.spec is not None else 0, ts.order)


class TaskMachine:
    # Declared, not a __dict__: CPython keeps an instance's attributes beside it only up to 30
    # names, and past that (this machine has over 50, with CenterState's) in a dict of its own
    # through which ``self.method(...)`` is looked up the slow way on every call; there are
    # dozens of such calls per task. A new attribute goes here (mypy says so).
    __slots__ = (
        "tasks", "workers", "names", "clients", "queue", "unrunnable", "avg_duration",
        "worker_saturation", "capacities", "capacity_of", "transition_log", "task_stream",
        "finished_by_prefix", "erred_by_prefix", "messages_handled", "task_counts", "alone",
        "prefix_of", "task_stream_count", "task_durations", "small_values_for",
        "told_of_recomputing", "stealing", "cancelling_unstarted", "waiting_for_resources",
        "resources_unranked",
        "clock", "now", "recovering", "_stimulus_id", "task_order", "outbox", "send", "free",
        "waits", "_resources_freed", "_slots_freed", "_in_batch",
        "_roots_full", "_table", "started", "_may_steal", "held", "in_blocks")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.tasks: dict[str, TaskState] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.names: dict[str, str] = {}  # worker name -> address
        self.clients: dict[str, set[str]] = {}  # client id -> keys it wants
        self.queue = ReadyQueue(self._queued)  # ready tasks without inputs, waiting for a slot
        self.unrunnable: set[str] = set()
        self.held = Held()  # tasks whose runs silenced two workers (see ``held``)
        # seconds, of tasks without inputs; 0 until the first of them finishes
        self.avg_duration = 0.0
        self.worker_saturation = placement.DEFAULT_SATURATION
        # Each worker's capacity for tasks without inputs, kept; ``capacity_of`` is its own,
        # bound here: placement asks it for each candidate worker of each such task.
        self.capacities = Capacities(self)
        self.capacity_of: Callable[[WorkerInfo], float] = self.capacities.of
        self.transition_log: deque[tuple[str, str, str, str, float]] = deque(maxlen=TRANSITION_LOG)
        # (key, worker, start, stop, nbytes, status "OK" or "error", inputs fetched for it) of
        # each run, the newest STREAM_LOG
        self.task_stream: deque[tuple[str, str, float, float, int, str, list[Transfer]]] = (
            deque(maxlen=STREAM_LOG))
        self.finished_by_prefix: Counter[str] = Counter()
        self.erred_by_prefix: Counter[str] = Counter()
        self.messages_handled = 0
        # For the dashboard, O(1) per transition: prefix -> state -> tasks now in that state.
        self.task_counts: dict[str, dict[str, int]] = {}
        self.alone = Singletons()  # the sets of one client or worker that tasks share
        self.prefix_of = PrefixNames()  # key -> the prefix it is counted under (capped)
        self.task_stream_count = 0  # appended ever: a cursor into task_stream
        self.task_durations = TaskDurations()
        # clients that take small values inline -> the forms they read, in order
        self.small_values_for: dict[str, tuple[str, ...]] = {}
        self.told_of_recomputing: set[str] = set()  # clients that take key-recomputing
        self.stealing: dict[str, str | None] = {}  # key asked back -> the idle worker (or none)
        # key asked back to be cancelled if not started -> the clients asking (``cancelling``)
        self.cancelling_unstarted: dict[str, set[str]] = {}
        # Tasks with resources= that no worker has free now: by what they ask for, in the
        # order they start (``start_rank``), but for the groups in ``resources_unranked``: a
        # task came in ahead of the last, and the group is put in order before it is used.
        self.waiting_for_resources: dict[frozenset, dict[str, None]] = {}
        self.resources_unranked: set[frozenset] = set()
        self.clock = clock
        self.started = clock()  # when this center started, as dask's scheduler_info() says
        self.now = 0.0  # the clock, read once per step
        # After a restart on a state directory, until the workers from before are back: no
        # task is sent anywhere (a worker coming back may hold its result already).
        self.recovering = False
        self._stimulus_id = ""  # of the transition being made
        self.task_order = itertools.count()
        # The step's messages (see ``outbox``). The machine's own modules call its ``send``
        # and ``free`` through it (once or more a task: a method passing them on cost a call,
        # and a bound method kept here a lookup CPython does not specialise); the handlers
        # outside the machine call them as the machine's own (``view.Center``).
        self.outbox = Outbox()
        self.send: Callable[[str, Message], None] = self.outbox.send
        self.free: Callable[[str, str], None] = self.outbox.free
        # Requests answered once what they wait for holds; told of copies landing and leaving.
        self.waits = Waits()
        self._resources_freed = False  # a worker with resources has had a task leave
        # Workers whose tasks were taken back during this step; they take queued work at its end
        # (not at once, so a release of many keys does not hand out work it is about to cancel).
        self._slots_freed: dict[str, None] = {}
        # While ``bring_back`` places a batch: a task without inputs or restrictions found no
        # free slot, so the next ones queue behind it without asking placement again.
        self._in_batch = False
        self._roots_full = False
        # Set when a worker is given more tasks than it has threads (one it has not started):
        # only then has the steal planner anything to look at, at the end of the step; it
        # clears this once no worker holds such a task.
        self._may_steal = False
        # Tasks moved by the block (see ``blocks``) where a map moves them by the thousand;
        # False: each alone, the per-key path the tests compare the blocks with.
        self.in_blocks = True
        self._table: dict[tuple[str, str], Callable[..., Recs]] = {
            (start, finish): getattr(self, name) for (start, finish), name in TRANSITIONS.items()}

    def _queued(self, key: str) -> bool:
        ts = self.tasks.get(key)
        return ts is not None and ts.state == "queued"

    def take_outgoing(self) -> Outgoing:
        """The messages of the step that ends, in the order they were made."""
        return self.outbox.take()

    # -- transitions ---------------------------------------------------------------------------
    def transitions(self, recs: Recs, stimulus_id: str) -> None:
        """Apply recommendations, and those they lead to, until none are left: depth first, each
        in the order it was made (as the calls of a recursive walk would be, without the
        recursion: chains of tasks outgrow Python's stack). Each moves its task by the table
        as ``transition`` does, written out in the loop (a graph's task makes three or four
        such moves, and a call each cost more than the dispatch itself).

        ``forgotten`` is a request, not an order: a task still needed stays as it is, and one
        that others depend on is released (kept as their lineage) rather than dropped.
        """
        stack = list(recs.items())
        stack.reverse()
        tasks = self.tasks
        table = self._table
        while stack:
            key, finish = stack.pop()
            ts = tasks.get(key)
            if ts is None:
                continue  # forgotten meanwhile
            # One optional argument, not *args: packing them costs more than the move.
            argument = None
            if not isinstance(finish, str):
                finish, argument = finish
            start = ts.state
            if start == finish:
                continue
            try:
                handler = table[start, finish]
            except KeyError:
                raise InvalidTransition(f"{ts.key}: {start} -> {finish}") from None
            self._stimulus_id = stimulus_id
            more = handler(ts) if argument is None else handler(ts, argument)
            if more:
                if len(more) == 1:
                    stack.extend(more.items())
                else:
                    items = list(more.items())
                    items.reverse()
                    stack.extend(items)

    def transition(self, ts: TaskState, finish: str, stimulus_id: str,
                   argument: Any = None) -> None:
        """Move one task by the table, and apply what follows from it (``transitions``): the
        path of every event about a task."""
        start = ts.state
        if start == finish or start == "forgotten":  # (let go of earlier in this step)
            return
        try:
            handler = self._table[start, finish]
        except KeyError:
            raise InvalidTransition(f"{ts.key}: {start} -> {finish}") from None
        self._stimulus_id = stimulus_id
        recs = handler(ts) if argument is None else handler(ts, argument)
        if recs:
            self.transitions(recs, stimulus_id)

    def _set_state(self, ts: TaskState, state: str) -> None:
        """Only handlers call this: it logs the move under the stimulus being handled."""
        start = ts.state
        self.transition_log.append((ts.key, start, state, self._stimulus_id, self.now))
        counts = ts.counts
        if counts is None:
            counts = ts.counts = self.task_counts.get(ts.prefix) or self._new_counts(ts.prefix)
        else:
            counts[start] -= 1
        counts[state] += 1
        ts.state = state  # type: ignore[assignment]

    def _new_counts(self, prefix: str) -> dict[str, int]:
        counts = self.task_counts[prefix] = dict.fromkeys(sorted(STATES), 0)
        return counts

    # The handlers, by the table at the end of this module. Each leaves ``ts`` in ``finish``
    # or, where it says so, goes on from there at once (a task with nothing to wait for is
    # placed; one that no worker may take now is queued instead) or declines.

    def _released_waiting(self, ts: TaskState, reason: str | None = None) -> Recs:
        """Bring ``ts`` back from its lineage; scattered data has none."""
        if ts.spec is None:
            return {ts.key: ("lost", f"data for {shown_key(ts.key)} was lost: scattered data "
                                     "has no lineage to recompute it from")}
        self._set_state(ts, "waiting")
        if not ts.deps:  # nothing to wait for: placed at once
            ts.waiting_on = NONE
            return self._to_processing(ts)
        ts.waiting_on, recs = lineage.inputs_to_wait_for(self, ts)
        if not recs and self.workers:  # (its inputs are all on their way: it may go ahead)
            worker = placement.ahead_worker(self, ts)
            if worker is not None:
                return {ts.key: ("processing", worker.address)}
        return recs

    def _to_processing(self, ts: TaskState, address: str | None = None) -> Recs:
        """Send ``ts`` to ``address``, or to where placement says; it may rather queue.

        A task still waiting on inputs goes only where ``placement.ahead_worker`` sends it
        ahead of them (else it declines, and waits); once placed, a task sends those of its
        dependents ahead that may wait for it where it runs.
        """
        if ts.waiting_on:
            ahead = placement.ahead_worker(self, ts)
            if ahead is None or ahead.address != address:
                return _NOTHING
            return self._send_ahead(ts, ahead)
        if address is not None:
            worker = self.workers[address]
        elif self.recovering:
            return self._to_no_worker(ts)
        else:
            spec = ts.spec
            plain = (self._in_batch and not ts.deps and not ts.dependents
                     and spec is not None and not spec.resources and not spec.workers)
            if plain and self._roots_full:
                return self._to_queued(ts)
            target = placement.decide(self, ts)
            if target == "queued":
                self._roots_full = plain
                return self._to_queued(ts)
            if target == "no-worker":
                others = placement.only_other_pythons(self, ts)
                if others:  # no worker it may wait for: it errs as any of them would err it
                    return {ts.key: ("erred", placement.other_python_error(ts, others))}
                if spec is not None and spec.pinned and placement.pinned_worker_gone(self, ts):
                    return {ts.key: ("erred", placement.pinned_worker_gone_error(ts))}
                return self._to_no_worker(ts)
            worker = target  # type: ignore[assignment]
        if self.unrunnable:  # (nearly always empty: no call then)
            self.unrunnable.discard(ts.key)
        self._set_state(ts, "processing")
        ts.processing_on = worker.address
        worker.processing[ts.key] = None
        if ts.deps and placement.is_brief(self, ts):
            worker.brief.add(ts.key)
        if not self._may_steal and worker.unstarted_above_threads:
            self._may_steal = True
        self.outbox.send(worker.address,
                         compute_message(self.tasks, self.small_values_for, ts, worker))
        if ts.dependents:
            if not ts.deps:  # its queued partners go with it (see placement)
                partners = placement.queued_partners(self, ts, worker)
                if partners:
                    return {key: ("processing", worker.address) for key in partners}
            if worker.ahead is not None:
                return placement.ahead_of(self, ts, worker)
        return _NOTHING

    def _send_ahead(self, ts: TaskState, worker: WorkerInfo) -> Recs:
        """Send ``ts`` to ``worker`` before the inputs it waits on, which ``worker`` is
        computing (or holds waiting ahead), finish: the worker starts it as soon as they do,
        without waiting for the center to hear of them. It stays ``processing`` with
        ``waiting_on`` kept; when the last input is in memory it simply runs there (see
        ``_inputs_arrived``). Its own dependents may wait behind it."""
        if self.unrunnable:  # (nearly always empty: no call then)
            self.unrunnable.discard(ts.key)
        self._set_state(ts, "processing")
        ts.processing_on = worker.address
        worker.processing[ts.key] = None
        worker.ahead.add(ts.key)  # type: ignore[union-attr]
        self.outbox.send(worker.address,
                         compute_message(self.tasks, self.small_values_for, ts, worker))
        return placement.ahead_of(self, ts, worker) if ts.dependents else _NOTHING

    def _cancel_ahead(self, ts: TaskState, worker: WorkerInfo) -> None:
        """``ts`` leaves ``worker`` other than by finishing there: the tasks sent ahead to wait
        for it there are taken back, to wait for it at the center again."""
        tasks = self.tasks
        for dep_key in list(ts.dependents):
            dts = tasks[dep_key]
            if (dts.state == "processing" and dts.processing_on == worker.address
                    and ts.key in dts.waiting_on):
                self.transition(dts, "waiting", self._stimulus_id)

    def _to_queued(self, ts: TaskState) -> Recs:
        if self.unrunnable:  # (nearly always empty: no call then)
            self.unrunnable.discard(ts.key)
        self._set_state(ts, "queued")
        if ts.spec is not None and ts.spec.resources:
            wanted = frozenset(ts.spec.resources.items())
            group = self.waiting_for_resources.setdefault(wanted, {})
            if group:
                last = self.tasks.get(next(reversed(group)))
                if last is None or start_rank(ts) < start_rank(last):
                    self.resources_unranked.add(wanted)
            group[ts.key] = None
        else:
            self.queue.push(ts.key, ts.spec.priority if ts.spec is not None else 0, ts.order)
        return _NOTHING

    def _to_no_worker(self, ts: TaskState) -> Recs:
        if ts.state != "no-worker":
            self._set_state(ts, "no-worker")
            if self.held.holds:
                # A hold lasts one stay here: one left from an earlier stay (the task was
                # released meanwhile, and wanted again) would keep it from any worker.
                self.held.end(ts.key)
        self.unrunnable.add(ts.key)
        return _NOTHING

    def _to_waiting(self, ts: TaskState, worker_forgot: bool | str = False) -> Recs:
        """Back to waiting: taken from its worker (which is told to drop it, unless it has
        forgotten it already), or out of the queue. A recommendation to bring it back from
        its lineage finds it on its way already, and is spent."""
        if worker_forgot == lineage.FROM_LINEAGE:
            return _NOTHING
        if ts.state == "processing":
            self._take_back(ts, tell_worker=not worker_forgot)
        self.unrunnable.discard(ts.key)
        self._set_state(ts, "waiting")
        return _NOTHING

    def _to_memory(self, ts: TaskState,
                   result: tuple[str, int, str, TaskFinished | None]) -> Recs:
        """A worker (``address``) holds the result (``finished`` says so, with the value when
        small): tell the clients, run what waited for it, and let go of inputs nobody needs
        now."""
        address, nbytes, type_, finished = result
        worker = self.workers[address]
        if ts.processing_on is not None:
            holder = self.workers.get(ts.processing_on)
            if holder is not None:
                holder.processing.pop(ts.key, None)
                if holder.brief:
                    holder.brief.discard(ts.key)
                if holder.long_running:
                    self.long_running_done(holder, ts.key)
                if holder is not worker:
                    self.outbox.free(holder.address, ts.key)
                    if holder.ahead:  # (they would wait there for a value it was told to drop)
                        self._cancel_ahead(ts, holder)
                if holder.ahead:
                    holder.ahead.discard(ts.key)
            ts.processing_on = None
        if self.unrunnable:
            self.unrunnable.discard(ts.key)
        ts.waiting_on = NONE
        ts.nbytes, ts.type = nbytes, intern(type_)  # ("int" once, not a copy per task)
        if finished is not None:
            ts.type_pickled = same_pickled_type(finished.type_pickled)
        self._set_state(ts, "memory")
        who_has = ts.who_has
        if not who_has:  # (``add_replica``, for the usual first holder, without two calls)
            ts.who_has = self.alone.of(address)
            worker.has_what.add(ts.key)
            worker.nbytes += nbytes
        elif address not in who_has:
            self.add_replica(ts, worker)
        if ts.spec is not None and ts.spec.actor:
            ts.actor_host = address
        self.finished_by_prefix[ts.prefix] += 1
        wanted_by = ts.wanted_by
        if wanted_by:
            holders = [address]
            small_values_for = self.small_values_for
            for client in wanted_by:
                # A small value goes along to clients that asked, so they need not fetch it;
                # the center passes it on and keeps nothing.
                forms = small_values_for.get(client)
                if forms is None or finished is None:
                    value = None
                elif forms[0] == "pickle" and finished.value is not None:
                    value = finished.value  # (``small_value``'s usual answer, without the call)
                else:
                    value = small_value(finished, forms)
                # (positional, as in ``compute_message``: one per task)
                self.outbox.send(client, key_in_memory(ts.key, nbytes, type_, holders, value,
                                                ts.type_pickled))
        if not ts.dependents and not ts.deps:
            return _NOTHING if wanted_by else {ts.key: "forgotten"}
        # Inputs nobody needs now are let go of before the dependents are placed: their
        # free-keys then goes ahead of the step's compute-tasks, and a chain's next links,
        # which follow each other, go in a row (see ``free``).
        recs: Recs = {}
        tasks = self.tasks
        for dep in ts.deps:
            if not tasks[dep].wanted_by:  # (wanted, it stays: no need to ask)
                recs[dep] = "forgotten"
        if ts.dependents:
            recs.update(self._inputs_arrived(ts))
        if not wanted_by:
            recs[ts.key] = "forgotten"
        return recs

    def _scattering_memory(self, ts: TaskState, pushed: tuple[str, int]) -> Recs:
        address, ts.nbytes = pushed
        nbytes = ts.nbytes
        self._set_state(ts, "memory")
        self.add_replica(ts, self.workers[address])
        for client in ts.wanted_by:
            self.outbox.send(client, KeyInMemory(key=ts.key, nbytes=nbytes, type=ts.type,
                                           workers=[address]))
        return self._inputs_arrived(ts)

    def _inputs_arrived(self, ts: TaskState) -> Recs:
        recs: Recs = {}
        tasks = self.tasks
        for dep_key in ts.dependents:
            dts = tasks[dep_key]
            dts.waiting_on = removed(dts.waiting_on, ts.key)
            if not dts.waiting_on:
                if dts.state == "waiting":
                    recs[dep_key] = "processing"
                elif dts.state == "processing":
                    worker = self.workers[dts.processing_on]  # type: ignore[index]
                    ahead = worker.ahead
                    if ahead and dep_key in ahead:
                        # Sent ahead, it has started on its worker: it is no longer ahead,
                        # and its own dependents may now wait for it there.
                        ahead.discard(dep_key)
                        # (it takes a thread now; ``worker.assigned`` written out: once a link)
                        if len(worker.processing) - len(ahead) > worker.nthreads:
                            self._may_steal = True
                        recs.update(placement.ahead_of(self, dts, worker))
        return recs

    def _to_released(self, ts: TaskState) -> Recs:
        """Keep only the lineage: a running task is taken back, held data freed. A task that
        was still to run no longer reads its inputs: those nothing else needs may go (its
        result turned up elsewhere, say, while the input it read was still being computed)."""
        active = ts.state in ACTIVE and ts.deps
        self._let_go(ts)
        self._set_state(ts, "released")
        return lineage.release_inputs(ts) if active else _NOTHING

    def _let_go(self, ts: TaskState) -> None:
        if ts.state == "processing":
            self._take_back(ts, tell_worker=True)
        elif ts.state == "memory":
            if self.waits.watched:
                self.waits.touch(ts.key)
            for address in ts.who_has:
                worker = self.workers.get(address)
                if worker is not None:
                    worker.has_what.discard(ts.key)
                    worker.nbytes -= ts.nbytes
                    self.outbox.free(address, ts.key)
            ts.who_has = NONE
        if self.unrunnable:  # (nearly always empty: no call then)
            self.unrunnable.discard(ts.key)

    def _to_forgotten(self, ts: TaskState, force: bool = False) -> Recs:
        """Let go of ``ts`` if nobody needs it: its data is freed, and its record dropped
        unless others depend on it (it stays ``released``, as their lineage). ``force``: the
        key is taken over by scattered data, which keeps the dependents."""
        if not force and (ts.wanted_by or ts.dependents and lineage.needed(self, ts)):
            return _NOTHING
        if ts.dependents and not force:
            return self._to_released(ts) if ts.state != "released" else _NOTHING
        self._let_go(ts)
        if self.tasks.get(ts.key) is ts:
            del self.tasks[ts.key]
        if ts.counts is not None:
            ts.counts[ts.state] -= 1
        self.transition_log.append((ts.key, ts.state, "forgotten", self._stimulus_id, self.now))
        ts.state = "forgotten"
        return self.unlink_inputs(ts) if ts.deps else _NOTHING

    def unlink_inputs(self, ts: TaskState) -> Recs:
        """``ts`` no longer reads its inputs; those nothing else reads may go."""
        deps, ts.deps = ts.deps, ()
        if not deps:
            return _NOTHING
        recs: Recs = {}
        for dep in deps:
            dts = self.tasks.get(dep)
            if dts is not None:
                dts.dependents = removed(dts.dependents, ts.key)
                if not dts.dependents:
                    recs[dep] = "forgotten"
        return recs

    def _to_erred(self, ts: TaskState, error: TaskErred) -> Recs:
        """``ts`` and everything that would still run on it err with ``error``."""
        if ts.state == "processing":
            self._take_back(ts, tell_worker=True)
        self.unrunnable.discard(ts.key)
        self._set_state(ts, "erred")
        ts.error = error
        self.erred_by_prefix[ts.prefix] += 1
        for client in ts.wanted_by:
            self.outbox.send(client, replace(error, key=ts.key))
        return lineage.spread(self, ts, ("erred", error))

    def _to_lost(self, ts: TaskState, message: str) -> Recs:
        """Lost for good (scattered data, or what waited on it): tell the clients."""
        if ts.state == "processing":
            self._take_back(ts, tell_worker=True)
        self.unrunnable.discard(ts.key)
        if ts.state == "memory" and self.waits.watched:
            self.waits.touch(ts.key)
        ts.lost_message = message
        self._set_state(ts, "lost")
        for client in ts.wanted_by:
            self.outbox.send(client, KeyLost(key=ts.key, message=message))
        # Everything waiting on it learns of the first cause: the data that was lost.
        cause = lineage.lost_input(ts) if ts.spec is None else message
        return lineage.spread(self, ts, ("lost", cause))

    def _to_scattering(self, ts: TaskState) -> Recs:
        self._set_state(ts, "scattering")
        return _NOTHING

    def _take_back(self, ts: TaskState, tell_worker: bool) -> None:
        self._roots_full = False  # (a slot is free again)
        worker = self.workers.get(ts.processing_on or "")
        if worker is not None:
            worker.processing.pop(ts.key, None)
            if worker.brief:
                worker.brief.discard(ts.key)
            if worker.long_running:
                self.long_running_done(worker, ts.key)
            if worker.ahead:
                worker.ahead.discard(ts.key)
                self._cancel_ahead(ts, worker)
            if tell_worker:
                self.outbox.free(worker.address, ts.key)
            self._slots_freed[worker.address] = None
        ts.processing_on = None

    def add_replica(self, ts: TaskState, worker: WorkerInfo) -> None:
        if worker.address not in ts.who_has:
            ts.who_has = joined(ts.who_has, worker.address, self.alone)
            worker.has_what.add(ts.key)
            worker.nbytes += ts.nbytes
            if self.waits.watched:
                self.waits.touch(ts.key)

    def drop_replica(self, ts: TaskState, worker: WorkerInfo) -> None:
        """``worker``'s copy of ``ts`` goes (another worker holds one): it is told to free it."""
        if worker.address in ts.who_has and len(ts.who_has) > 1:
            ts.who_has = left(ts.who_has, worker.address)
            worker.has_what.discard(ts.key)
            worker.nbytes -= ts.nbytes
            self.outbox.free(worker.address, ts.key)
            if self.waits.watched:
                self.waits.touch(ts.key)

    def record_run(self, ts: TaskState, address: str, msg: TaskFinished) -> None:
        """The run's duration and its entry in the task stream (the dashboard's)."""
        if msg.stop > msg.start > 0:
            duration = msg.stop - msg.start
            if not ts.deps:
                # The margin it sets is for tasks without inputs (those the queue holds): a
                # shuffle's splits of a millisecond each made it dozens of tasks per worker
                # for reads of 60 ms, and the first worker to report took the queue whole.
                self.avg_duration = (duration if not self.avg_duration
                                     else 0.9 * self.avg_duration + 0.1 * duration)
            self.task_stream.append((msg.key, address, msg.start, msg.stop, msg.nbytes, "OK",
                                     msg.transfers))
            self.task_stream_count += 1
            self.task_durations.observe(ts.prefix, duration)

    def story(self, *keys: str) -> list[tuple[str, str, str, str, float]]:
        """The logged transitions of these keys, oldest first."""
        wanted = set(keys)
        return [t for t in self.transition_log if t[0] in wanted]

    # -- capacity ------------------------------------------------------------------------------
    def forget_capacity(self, address: str) -> None:
        """The worker's metrics, threads or seceded tasks changed (or it left)."""
        self.capacities.forget(address)

    def long_running_done(self, worker: WorkerInfo, key: str) -> None:
        if key in worker.long_running:
            worker.long_running.discard(key)
            self.forget_capacity(worker.address)


_NOTHING: Recs = {}
