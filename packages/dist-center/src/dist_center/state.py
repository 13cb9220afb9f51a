"""CenterState: the center's decisions as a plain class -- events in, messages out.

``handle(event)`` is the only thing that changes the state; it returns ``(recipient, message)``
pairs for the server to send (a recipient is a worker address or a client id). Nothing here
does I/O, reads the clock on its own, or opens a payload: functions, arguments and errors are
carried as opaque ``Payload``s.

Task states: ``waiting`` (inputs not all in memory) -> ``queued`` (ready, no worker slot yet) or
``no-worker`` (no running worker may take it) -> ``processing`` (sent to one worker) ->
``memory`` | ``erred``; ``released`` keeps a task's lineage without data while others depend on
it; ``lost`` is scattered data whose every copy is gone; ``scattering`` awaits a client's push.

What becomes of inputs and dependents when data is lost, a task fails or nobody needs a key is
in ``lineage``; which worker runs a task is in ``placement``; the records in ``records``.
"""
from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from dist_protocol.messages import (AcquireReplicas, Cancel, ClusterInfo, ClusterInfoReply,
                                    ComputeTask, FreeKeys, Heartbeat, KeyCancelled, KeyInMemory,
                                    KeyLost, KeysAdded, Message, MissingData, RegisterWorker,
                                    Release, Replicate, Restart, RestartWorker, ScatterDone,
                                    ScatterPlan, ScatterPlanReply, StealReply, Submit, TaskErred,
                                    TaskFinished, Unregister, WhoHas, WhoHasReply,
                                    WorkerRegistered)
from dist_protocol.serialize import Payload

from . import balance, lineage, placement
from .durations import TaskDurations
from .events import (ClientConnected, ClientDisconnected, ClientSent, Event, WorkerJoined,
                     WorkerLeft, WorkerSent)
from .invariants import validate_state
# The records live apart; importers of this module find them here as well.
from .records import (ACTIVE, NONE, STATES, PrefixNames, TaskState, WorkerInfo,  # noqa: F401
                      added, discard, key_prefix)

# States of a task that has not started running anywhere (what `cancel pending_only` cancels).
NOT_STARTED = frozenset({"waiting", "queued", "no-worker", "released"})
ALLOWED_FAILURES = 3  # deaths of workers while running a task before it fails as KilledWorker
BUFFER_SECONDS = 0.005  # work to keep queued on a worker beyond its threads, to hide round trips
MAX_MARGIN_PER_THREAD = 64

TRANSITION_LOG = 10_000  # recent (key, from, to) transitions, for story()
STREAM_LOG = 5_000  # recent (key, worker, start, stop) executions, for the dashboard

Outgoing = list[tuple[str, Message]]


class CenterState:
    def __init__(self) -> None:
        self.tasks: dict[str, TaskState] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.names: dict[str, str] = {}  # worker name -> address
        self.clients: dict[str, set[str]] = {}  # client id -> keys it wants
        self.queue: list[tuple[tuple[int, int], str]] = []  # ready tasks without inputs
        self.unrunnable: set[str] = set()
        self.avg_duration = 0.0  # seconds; 0 until the first task finishes
        self.transitions: deque[tuple[str, str, str]] = deque(maxlen=TRANSITION_LOG)
        self.task_stream: deque[tuple[str, str, float, float]] = deque(maxlen=STREAM_LOG)
        self.finished_by_prefix: Counter[str] = Counter()
        self.erred_by_prefix: Counter[str] = Counter()
        self.messages_handled = 0
        # For the dashboard, O(1) per transition: prefix -> state -> tasks now in that state.
        self.task_counts: dict[str, dict[str, int]] = {}
        self.prefix_of = PrefixNames()  # key -> the prefix it is counted under (capped)
        self.task_stream_count = 0  # appended ever: a cursor into task_stream
        self.task_durations = TaskDurations()
        self._seq = itertools.count()
        self._out: Outgoing = []
        self._last_sent: dict[str, Message] = {}  # per recipient, within one handle()
        self.small_values_for: set[str] = set()  # clients that take small values inline
        self.told_of_recomputing: set[str] = set()  # clients that take key-recomputing
        self.stealing: dict[str, str | None] = {}  # key asked back -> the idle worker (or none)
        # Tasks with resources= that no worker has free now: by what they ask for, in order.
        self.waiting_for_resources: dict[frozenset, dict[str, None]] = {}
        self._resources_freed = False  # a worker with resources has had a task leave
        # Workers whose tasks were taken back during this step; they take queued work at its end
        # (not at once, so a release of many keys does not hand out work it is about to cancel).
        self._slots_freed: dict[str, None] = {}
        self._unlinked: list[TaskState] = []  # inputs whose last reader was just forgotten
        self._releasing_unlinked = False
        self._handlers: dict[type, Callable[[Any], None]] = {
            ClientConnected: self._client_connected,
            ClientDisconnected: self._client_disconnected,
            ClientSent: self._client_sent,
            WorkerJoined: self._worker_joined,
            WorkerSent: self._worker_sent,
            WorkerLeft: self._worker_left,
        }
        self._client_ops: dict[type, Callable[[str, Any], None]] = {
            Submit: self._submit, Release: self._release, Cancel: self._cancel,
            WhoHas: self._who_has, ScatterPlan: self._scatter_plan,
            ScatterDone: self._scatter_done,
            ClusterInfo: self._cluster_info, Replicate: self._replicate,
            Restart: self._restart,
        }
        self._worker_ops: dict[type, Callable[[str, Any], None]] = {
            TaskFinished: self._task_finished, TaskErred: self._task_erred,
            KeysAdded: self._keys_added, MissingData: self._missing_data,
            Heartbeat: self._heartbeat, Unregister: self._unregister,
            StealReply: self._steal_reply,
        }

    # -- the one entry point -----------------------------------------------------------------
    def handle(self, *events: Event) -> Outgoing:
        for event in events:
            self._handlers[type(event)](event)
        self._refill()
        balance.balance(self)
        out, self._out = self._out, []
        self._last_sent.clear()
        return out

    def _refill(self) -> None:
        freed, self._slots_freed = self._slots_freed, {}
        for address in freed:
            worker = self.workers.get(address)
            if worker is not None:
                self._fill(worker)
        if self._resources_freed and self.waiting_for_resources:
            self._place_waiting_for_resources()

    def _send(self, to: str, message: Message) -> None:
        self._out.append((to, message))
        self._last_sent[to] = message

    def _free(self, address: str, key: str) -> None:
        """Tell a worker to drop ``key``. Releasing a map frees thousands of keys in one step:
        they go as one free-keys message per worker, in the place the first one would have."""
        last = self._last_sent.get(address)
        if type(last) is FreeKeys:
            last.keys.append(key)
        else:
            self._send(address, FreeKeys(keys=[key]))

    def _set_state(self, ts: TaskState, state: str) -> None:
        self.transitions.append((ts.key, ts.state, state))
        counts = ts.counts
        if counts is None:
            counts = ts.counts = self.task_counts.get(ts.prefix) or self._new_counts(ts.prefix)
        else:
            counts[ts.state] -= 1
        counts[state] += 1
        ts.state = state

    def _new_counts(self, prefix: str) -> dict[str, int]:
        counts = self.task_counts[prefix] = dict.fromkeys(sorted(STATES), 0)
        return counts

    def story(self, key: str) -> list[tuple[str, str, str]]:
        return [t for t in self.transitions if t[0] == key]

    # -- clients ---------------------------------------------------------------------------
    def _client_connected(self, event: ClientConnected) -> None:
        self.clients.setdefault(event.client, set())
        if "key-recomputing" in event.features:
            self.told_of_recomputing.add(event.client)

    def _client_disconnected(self, event: ClientDisconnected) -> None:
        self.small_values_for.discard(event.client)
        self.told_of_recomputing.discard(event.client)
        for key in list(self.clients.pop(event.client, ())):
            ts = self.tasks.get(key)
            if ts is not None:
                discard(ts.wanted_by, event.client)
                lineage.maybe_release(self, ts)

    def _client_sent(self, event: ClientSent) -> None:
        self.messages_handled += 1
        self.clients.setdefault(event.client, set())
        handler = self._client_ops.get(type(event.message))
        if handler is not None:
            handler(event.client, event.message)

    def _want(self, client: str, ts: TaskState) -> None:
        ts.wanted_by = added(ts.wanted_by, client)
        self.clients[client].add(ts.key)

    def _submit(self, client: str, msg: Submit) -> None:
        if msg.small_values:
            self.small_values_for.add(client)
        wanted = None if msg.wanted is None else set(msg.wanted)
        fresh: list[TaskState] = []
        touched: list[TaskState] = []
        for spec in msg.tasks:
            ts = self.tasks.get(spec.key)
            if ts is None or (ts.state in ("released", "lost") and ts.scattered):
                dependents: set[str] | frozenset = NONE
                if ts is not None:  # scattered data gone: from now on a task computes it
                    dependents = ts.dependents
                    lineage.forget(self, ts)
                ts = TaskState(spec.key, spec, next(self._seq), self.prefix_of(spec.key))
                ts.dependents = dependents
                self.tasks[spec.key] = ts
                fresh.append(ts)
            touched.append(ts)
            if wanted is None or spec.key in wanted:
                self._want(client, ts)
                self._report_existing(client, ts)
        for ts in fresh:
            self._link(ts)
        for ts in lineage.in_cycles(fresh):
            if ts.state != "erred":
                lineage.fail(self, ts, "CyclicDependency",
                             f"task {ts.key} depends on itself through its inputs")
        for ts in touched:
            if ts.state == "released" and lineage.needed(self, ts):
                lineage.recompute(self, ts)
        for ts in fresh:
            if ts.state == "released" and self.tasks.get(ts.key) is ts:
                lineage.maybe_release(self, ts)  # neither wanted nor needed: nothing to keep it for

    def _report_existing(self, client: str, ts: TaskState) -> None:
        if ts.state == "memory":
            self._send(client, KeyInMemory(key=ts.key, nbytes=ts.nbytes, type=ts.type,
                                           workers=sorted(ts.who_has)))
        elif ts.state == "erred" and ts.error is not None:
            self._send(client, replace(ts.error, key=ts.key))
        elif ts.state == "lost":
            self._send(client, KeyLost(key=ts.key, message=ts.lost_message))

    def _link(self, ts: TaskState) -> None:
        missing = [dep for dep in ts.deps if dep not in self.tasks]
        ts.deps = tuple(dep for dep in ts.deps if dep in self.tasks)
        for dep in ts.deps:
            dts = self.tasks[dep]
            dts.dependents = added(dts.dependents, ts.key)
        if missing:
            lineage.fail(self, ts, "MissingDependency",
                         f"task {ts.key} depends on {', '.join(missing)}, which the center "
                         "does not know (released before it was used?)")

    def _release(self, client: str, msg: Release) -> None:
        wants = self.clients.get(client, set())
        for key in msg.keys:
            wants.discard(key)
            ts = self.tasks.get(key)
            if ts is not None:
                discard(ts.wanted_by, client)
                lineage.maybe_release(self, ts)

    def _cancel(self, client: str, msg: Cancel) -> None:
        keys = msg.keys
        if msg.pending_only:  # running and finished tasks go on (concurrent.futures' shutdown)
            keys = [key for key in keys
                    if (ts := self.tasks.get(key)) is None or ts.state in NOT_STARTED]
        self._release(client, Release(keys=keys))
        for key in keys:
            self._send(client, KeyCancelled(key=key))

    def _who_has(self, client: str, msg: WhoHas) -> None:
        who_has = {}
        for key in msg.keys:
            ts = self.tasks.get(key)
            who_has[key] = sorted(ts.who_has) if ts is not None else []
        self._send(client, WhoHasReply(id=msg.id, who_has=who_has))

    def _scatter_plan(self, client: str, msg: ScatterPlan) -> None:
        pool = [w for w in self.workers.values() if w.status == "running"]
        if msg.workers:
            allowed = {self.names.get(w, w) for w in msg.workers}
            pool = [w for w in pool if w.address in allowed]
        if not pool:
            self._send(client, ScatterPlanReply(id=msg.id, targets={}))
            return
        # Round robin over the workers holding the least, so scattered data spreads out.
        pool.sort(key=lambda w: (w.nbytes, len(w.has_what), w.address))
        ring = itertools.cycle(pool)
        targets = {key: [w.address for w in pool] if msg.broadcast else [next(ring).address]
                   for key in msg.keys}
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state in ("released", "lost"):
                if ts is not None:
                    self._forget_or_reset(ts)
                ts = self.tasks.get(key) or TaskState(key, None, next(self._seq),
                                                      self.prefix_of(key))
                self.tasks[key] = ts
                if ts.state != "memory":
                    self._set_state(ts, "scattering")
            self._want(client, ts)
        self._send(client, ScatterPlanReply(id=msg.id, targets=targets))

    def _scatter_done(self, client: str, msg: ScatterDone) -> None:
        """The client pushed data and the workers confirmed: record it now, as the workers'
        own reports would (they follow, and change nothing), so that whatever this client
        sends next finds the data in place."""
        by_worker: dict[str, dict[str, int]] = {}
        for key, addresses in msg.who_has.items():
            for address in addresses:
                by_worker.setdefault(address, {})[key] = msg.nbytes.get(key, 0)
        for address, keys in by_worker.items():
            if address in self.workers:
                self._keys_added(address, KeysAdded(keys=keys))

    def _forget_or_reset(self, ts: TaskState) -> None:
        """Scattered data takes the key over: keep the task only as its dependents' input."""
        if ts.dependents:
            ts.spec, ts.scattered = None, True
            lineage.unlink_inputs(self, ts)
        else:
            lineage.forget(self, ts)

    def _replicate(self, client: str, msg: Replicate) -> None:
        """Copy each key in memory onto more workers until it is on ``n`` of them."""
        orders: dict[str, dict[str, list[str]]] = {}
        nbytes: dict[str, dict[str, int]] = {}
        running = [w for w in self.workers.values() if w.status == "running"]
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state != "memory":
                continue
            missing = max(0, msg.n - len(ts.who_has))
            others = sorted((w for w in running if w.address not in ts.who_has),
                            key=lambda w: (w.nbytes, w.address))
            for worker in others[:missing]:
                orders.setdefault(worker.address, {})[key] = sorted(ts.who_has)
                nbytes.setdefault(worker.address, {})[key] = ts.nbytes
        for address, who_has in orders.items():
            self._send(address, AcquireReplicas(who_has=who_has, nbytes=nbytes[address]))

    def _restart(self, client: str, msg: Restart) -> None:
        """Forget every task and restart every worker; clients' futures are cancelled."""
        for other, keys in self.clients.items():
            for key in keys:
                self._send(other, KeyCancelled(key=key))
            keys.clear()
        for address in list(self.workers):
            self._send(address, RestartWorker(reason=f"restart requested by {client}"))
        self.tasks.clear()
        self.task_counts.clear()
        self.workers.clear()
        self.names.clear()
        self.queue.clear()
        self.unrunnable.clear()
        self.stealing.clear()
        self.waiting_for_resources.clear()

    def _cluster_info(self, client: str, msg: ClusterInfo) -> None:
        self._send(client, ClusterInfoReply(id=msg.id, workers=self.worker_table()))

    def worker_table(self) -> list[dict]:
        return [{"address": w.address, "name": w.name, "nthreads": w.nthreads,
                 "memory_limit": w.memory_limit, "status": w.status,
                 "processing": len(w.processing), "keys": len(w.has_what), "nbytes": w.nbytes,
                 "metrics": w.metrics, "environment": w.environment}
                for w in self.workers.values()]

    # -- workers joining and leaving ---------------------------------------------------------
    def _worker_joined(self, event: WorkerJoined) -> None:
        reg: RegisterWorker = event.registration
        carried: set[str] = set()
        previous = self.workers.get(reg.address)
        if previous is not None:
            # Registered again before its old connection was noticed gone: what it still holds
            # stays where it is, instead of being lost and recomputed; its tasks start over.
            carried = previous.has_what & reg.keys.keys()
            previous.has_what -= carried
            self._worker_left(WorkerLeft(reg.address, "registered again", graceful=True))
        name = reg.name or reg.address
        worker = WorkerInfo(reg.address, name, reg.nthreads, reg.memory_limit, reg.resources)
        worker.has_what = carried
        if event.environment is not None:
            worker.environment = asdict(event.environment)
        worker.nbytes = sum(self.tasks[key].nbytes for key in carried)
        self.workers[reg.address] = worker
        self.names[name] = reg.address
        self._send(reg.address, WorkerRegistered(address=reg.address))
        stale = []
        for key, nbytes in reg.keys.items():
            ts = self.tasks.get(key)
            if ts is None or not self._accept_result(ts, worker, nbytes, ts.type):
                stale.append(key)
        if stale:
            self._send(reg.address, FreeKeys(keys=stale))
        for key in list(self.unrunnable):
            ts = self.tasks.get(key)
            self.unrunnable.discard(key)
            if ts is not None and ts.state == "no-worker":
                self._place(ts)
        self._fill(worker)

    def _unregister(self, address: str, msg: Unregister) -> None:
        self._worker_left(WorkerLeft(address, "unregistered", graceful=True))

    def _worker_left(self, event: WorkerLeft) -> None:
        worker = self.workers.pop(event.worker, None)
        if worker is None:
            return
        balance.forget_worker(self, worker.address)
        if self.names.get(worker.name) == worker.address:
            del self.names[worker.name]
        worker.status = "closed"
        running = set(itertools.islice(worker.processing, worker.nthreads))
        orphans = []
        for key in worker.processing:
            ts = self.tasks[key]
            ts.processing_on = None
            if key in running and not event.graceful:
                ts.died_on.append(worker.address)
                if len(ts.died_on) >= ALLOWED_FAILURES:
                    self._set_state(ts, "waiting")
                    lineage.fail(self, ts, "KilledWorker",
                                 f"task {key} was running on workers that died "
                                 f"{len(ts.died_on)} times: {', '.join(ts.died_on)} "
                                 f"(the last: {event.reason}); giving up")
                    continue
            self._set_state(ts, "waiting")
            orphans.append(ts)
        worker.processing.clear()
        lost = []
        for key in worker.has_what:
            ts = self.tasks[key]
            discard(ts.who_has, worker.address)
            if not ts.who_has and ts.state == "memory":
                lost.append(ts)
        worker.has_what.clear()
        lineage.lose(self, lost, f"its only copy was on worker {worker.address}, which left "
                                 f"({event.reason})")
        for ts in orphans:
            if ts.state == "waiting":
                lineage.recompute(self, ts)
        for other in list(self.workers.values()):
            self._fill(other)

    # -- results from workers ----------------------------------------------------------------
    def _worker_sent(self, event: WorkerSent) -> None:
        self.messages_handled += 1
        if event.worker not in self.workers:
            return  # a worker we consider gone; it re-registers before it is heard again
        handler = self._worker_ops.get(type(event.message))
        if handler is not None:
            handler(event.worker, event.message)

    def _task_finished(self, address: str, msg: TaskFinished) -> None:
        worker = self.workers[address]
        ts = self.tasks.get(msg.key)
        if ts is not None and ts.processing_on == address:
            self._accept_result(ts, worker, msg.nbytes, msg.type, msg.value)
            self._record_run(ts, address, msg)
        elif ts is None or address not in ts.who_has:  # (a holder telling twice is no news)
            # Not the run the center waits for. The center may have asked this worker to free
            # the key since (the messages crossed), so whether the worker still holds the value
            # is unknown: make sure it does not, rather than send readers to a missing copy.
            self._free(address, msg.key)
        self._fill(worker)

    def _steal_reply(self, address: str, msg: StealReply) -> None:
        balance.steal_reply(self, address, msg)

    def _record_run(self, ts: TaskState, address: str, msg: TaskFinished) -> None:
        if msg.stop > msg.start > 0:
            duration = msg.stop - msg.start
            self.avg_duration = (duration if not self.avg_duration
                                 else 0.9 * self.avg_duration + 0.1 * duration)
            self.task_stream.append((msg.key, address, msg.start, msg.stop))
            self.task_stream_count += 1
            self.task_durations.observe(ts.prefix, duration)

    def _accept_result(self, ts: TaskState, worker: WorkerInfo, nbytes: int, type_: str,
                       value: Payload | None = None) -> bool:
        """Record that ``worker`` holds ``ts``'s value; False when the value is not wanted."""
        if ts.state == "memory":
            self._add_replica(ts, worker)
            return True
        if ts.state not in ACTIVE or not lineage.needed(self, ts):
            return False
        if ts.processing_on is not None:
            holder = self.workers.get(ts.processing_on)
            if holder is not None:
                holder.processing.pop(ts.key, None)
                if holder is not worker:
                    self._free(holder.address, ts.key)
            ts.processing_on = None
        self.unrunnable.discard(ts.key)
        ts.waiting_on = NONE
        ts.nbytes, ts.type = nbytes, type_
        self._set_state(ts, "memory")
        self._add_replica(ts, worker)
        self.finished_by_prefix[ts.prefix] += 1
        if ts.wanted_by:
            holders = [worker.address]
            for client in ts.wanted_by:
                # A small value goes along to clients that asked, so they need not fetch it;
                # the center passes it on and keeps nothing.
                self._send(client, KeyInMemory(
                    key=ts.key, nbytes=nbytes, type=type_, workers=holders,
                    value=value if client in self.small_values_for else None))
        for dep_key in ts.dependents:
            dts = self.tasks[dep_key]
            discard(dts.waiting_on, ts.key)
            if dts.state == "waiting" and not dts.waiting_on:
                self._place(dts)
        for dep_key in ts.deps:
            lineage.maybe_release(self, self.tasks[dep_key])
        lineage.maybe_release(self, ts)
        return True

    def _add_replica(self, ts: TaskState, worker: WorkerInfo) -> None:
        if worker.address not in ts.who_has:
            ts.who_has = added(ts.who_has, worker.address)
            worker.has_what.add(ts.key)
            worker.nbytes += ts.nbytes

    def _task_erred(self, address: str, msg: TaskErred) -> None:
        worker = self.workers[address]
        ts = self.tasks.get(msg.key)
        if ts is None or ts.state != "processing" or ts.processing_on != address:
            self._fill(worker)
            return
        worker.processing.pop(ts.key, None)
        ts.processing_on = None
        if ts.retries_left > 0:
            ts.retries_left -= 1
            self._set_state(ts, "waiting")
            self._place(ts)
        else:
            self._set_state(ts, "waiting")
            lineage.fail_with(self, ts, msg)
        self._fill(worker)

    def _keys_added(self, address: str, msg: KeysAdded) -> None:
        worker = self.workers[address]
        unwanted = []
        for key, nbytes in msg.keys.items():
            ts = self.tasks.get(key)
            if ts is None:
                unwanted.append(key)
            elif ts.state == "scattering":
                ts.nbytes = nbytes
                self._set_state(ts, "memory")
                self._add_replica(ts, worker)
                for client in ts.wanted_by:
                    self._send(client, KeyInMemory(key=key, nbytes=nbytes, type=ts.type,
                                                   workers=[address]))
                for dep_key in ts.dependents:
                    dts = self.tasks[dep_key]
                    discard(dts.waiting_on, key)
                    if dts.state == "waiting" and not dts.waiting_on:
                        self._place(dts)
            elif ts.state == "memory":
                ts.nbytes = ts.nbytes or nbytes
                self._add_replica(ts, worker)
            else:
                unwanted.append(key)
        if unwanted:
            self._send(address, FreeKeys(keys=unwanted))

    def _missing_data(self, address: str, msg: MissingData) -> None:
        ts = self.tasks.get(msg.key)
        if ts is None:
            return
        holder = self.workers.get(msg.worker)
        if msg.worker in ts.who_has:
            discard(ts.who_has, msg.worker)
            if holder is not None:
                holder.has_what.discard(ts.key)
                holder.nbytes -= ts.nbytes
                # It may hold the key yet fail to serve it; no longer counted, it must not
                # keep it either, or the copy would never be freed.
                self._free(holder.address, ts.key)
        if ts.state == "memory" and not ts.who_has:
            lineage.lose(self, [ts], f"worker {msg.worker} no longer had it")
        elif ts.state == "memory":
            for dep_key in ts.dependents:
                dts = self.tasks[dep_key]
                if dts.state == "processing" and dts.processing_on == address:
                    self._send(address, self._compute_message(dts))

    def _heartbeat(self, address: str, msg: Heartbeat) -> None:
        worker = self.workers[address]
        worker.metrics = msg.metrics
        paused = bool(msg.metrics.get("paused"))
        if paused and worker.status == "running":
            worker.status = "paused"
            balance.evacuate(self, worker)
        elif not paused and worker.status == "paused":
            worker.status = "running"
            for key in list(self.unrunnable):
                ts = self.tasks.get(key)
                self.unrunnable.discard(key)
                if ts is not None and ts.state == "no-worker":
                    self._place(ts)
            self._fill(worker)

    # -- scheduling ----------------------------------------------------------------------------
    def _place(self, ts: TaskState) -> None:
        """``ts`` has every input in memory: send it to a worker, queue it, or park it."""
        pool = placement.candidates(ts, self.workers, self.names)
        if not pool:
            self._set_state(ts, "no-worker")
            self.unrunnable.add(ts.key)
            return
        if ts.spec is not None and ts.spec.resources:
            self._place_with_resources(ts, pool)
            return
        if ts.deps or (ts.spec is not None and ts.spec.workers):
            best = placement.best_worker(ts, pool, self.tasks)
            assert best is not None  # the pool is not empty
            self._assign(ts, best)
            return
        free = [w for w in pool if len(w.processing) < self._capacity(w)]
        if free:
            self._assign(ts, min(free, key=placement.occupancy))
        else:
            self._set_state(ts, "queued")
            heapq.heappush(self.queue, (ts.priority, ts.key))

    def _place_with_resources(self, ts: TaskState, pool: list[WorkerInfo]) -> bool:
        """Only on a worker with the resources free; else it waits until some are freed."""
        assert ts.spec is not None and ts.spec.resources is not None
        wanted = ts.spec.resources
        free = [w for w in pool
                if placement.has_resources(placement.free_resources(w, self.tasks), wanted)]
        best = placement.best_worker(ts, free, self.tasks)
        if best is not None:
            self._assign(ts, best)
            return True
        if ts.state != "queued":
            self._set_state(ts, "queued")
            group = self.waiting_for_resources.setdefault(frozenset(wanted.items()), {})
            group[ts.key] = None
        return False

    def _place_waiting_for_resources(self) -> None:
        """Resources were freed: start waiting tasks, in order, while each kind still fits
        (tasks asking for the same resources wait in one group; the first that does not fit
        ends that group's turn)."""
        self._resources_freed = False
        for wanted, group in list(self.waiting_for_resources.items()):
            for key in list(group):
                ts = self.tasks.get(key)
                if ts is None or ts.state != "queued":
                    del group[key]
                    continue
                pool = placement.candidates(ts, self.workers, self.names)
                if not pool:
                    del group[key]
                    self._set_state(ts, "waiting")
                    self._place(ts)  # no worker has them at all any more: no-worker
                    continue
                if not self._place_with_resources(ts, pool):
                    break
                del group[key]
            if not group:
                del self.waiting_for_resources[wanted]

    def _capacity(self, worker: WorkerInfo) -> int:
        """Tasks a worker may hold at once: its threads plus about BUFFER_SECONDS of work."""
        if self.avg_duration <= 0:
            per_thread = 1
        else:
            per_thread = min(MAX_MARGIN_PER_THREAD,
                             max(1, math.ceil(BUFFER_SECONDS / self.avg_duration)))
        return worker.nthreads * (1 + per_thread)

    def _fill(self, worker: WorkerInfo) -> None:
        if worker.resources:
            self._resources_freed = True
        if worker.status != "running" or worker.address not in self.workers:
            return
        capacity = self._capacity(worker)
        queue = self.queue
        while queue and len(worker.processing) < capacity:
            _, key = heapq.heappop(queue)
            ts = self.tasks.get(key)
            if ts is not None and ts.state == "queued":
                self._assign(ts, worker)

    def _assign(self, ts: TaskState, worker: WorkerInfo) -> None:
        self._set_state(ts, "processing")
        ts.processing_on = worker.address
        worker.processing[ts.key] = None
        self._send(worker.address, self._compute_message(ts))

    def _unassign(self, ts: TaskState) -> None:
        worker = self.workers.get(ts.processing_on or "")
        if worker is not None:
            worker.processing.pop(ts.key, None)
            self._free(worker.address, ts.key)
            self._slots_freed[worker.address] = None
        ts.processing_on = None
        self._set_state(ts, "waiting")

    def _compute_message(self, ts: TaskState) -> ComputeTask:
        spec = ts.spec
        assert spec is not None
        who_has = {}
        nbytes = {}
        for dep in ts.deps:
            dts = self.tasks[dep]
            who_has[dep] = list(dts.who_has)
            nbytes[dep] = dts.nbytes
        return ComputeTask(key=ts.key, function=spec.function, args=spec.args, who_has=who_has,
                           nbytes=nbytes, priority=spec.priority, pickled_with=spec.pickled_with)

    def compact(self) -> None:
        """Rebuild the big tables: dicts and sets keep their peak size after deletions."""
        self.tasks = dict(self.tasks)
        self.clients = {client: set(keys) for client, keys in self.clients.items()}
        for worker in self.workers.values():
            worker.has_what = set(worker.has_what)
            worker.processing = dict(worker.processing)
        self.queue = list(self.queue)
        self.unrunnable = set(self.unrunnable)
        self.stealing = dict(self.stealing)
        # The histories outlive the burst that wrote them, and their entries (and the keys
        # they name) sit in memory pages allocated during it: scattered, a few thousand keep
        # most of those pages from going back to the system. Only entries about tasks still
        # known stay; the dashboard has shown the rest as they happened.
        tasks = self.tasks
        self.transitions = deque((t for t in self.transitions if t[0] in tasks),
                                 maxlen=self.transitions.maxlen)
        self.task_stream = deque((t for t in self.task_stream if t[0] in tasks),
                                 maxlen=self.task_stream.maxlen)

    def validate(self) -> None:
        """Assert every invariant; tests call this after each step."""
        validate_state(self)
