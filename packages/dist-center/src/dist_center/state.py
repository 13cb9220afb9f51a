"""CenterState: the center's decisions as a plain class -- events in, messages out.

``handle(*events)`` is the only thing that changes the state; it returns ``(recipient,
message)`` pairs for the server to send (a recipient is a worker address or a client id).
Nothing here does I/O or opens a payload: functions, arguments and errors are carried as
opaque ``Payload``s. The clock is read once per step, for the transition log.

This module says what each event asks of the task state machine (``transitions``): which
transitions to make, which messages to answer with. A task's states and the table of moves
between them are there; the decisions about lineage, placement and stealing are pure
functions in ``lineage``, ``placement`` and ``balance``; read-only answers in ``queries``.
Groups of requests are handled in modules of their own (``recovery``, ``sharing``, ``retrying``,
``scattering``, ``taking_back``, ``retirement``, ``stories``), and so are the tasks a worker
leaves behind (``departures``), over the ``view.Center`` that this class is: none of them
imports this module.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections import deque
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from typing import Any

from dist_protocol.environment import pickle_tag
from dist_protocol.messages import (OPS, Cancel, ClusterInfo, Coordinate,
                                    FireAndForget, FreeKeys, GetDataset, GetTaskSpec, Heartbeat,
                                    KeyCancelled,
                                    KeyInMemory, KeyLost, KeysAdded, ListDatasets,
                                    MissingData, PublishDataset, Rebalance, RegisterWorker,
                                    RegisterPlugin, Release,
                                    Replicate, Restart, RestartReply, RestartWorker,
                                    RestartWorkers, Retry,
                                    ScatterDone, TaskStream,
                                    ScatterPlan, Session, StealReply, Story, StoryReply, Submit,
                                    RestartingForMemory, TaskErred, TaskFinished, TaskSeceded,
                                    UnpublishDataset,
                                    Unregister, UnregisterPlugin, UploadFile, UploadFileReply,
                                    WantKeys, WhoHas, WorkerQuery, WorkerQueryReply,
                                    WorkerRegistered, WorkerTerminated)

from . import (balance, cancelling, coordination, departures, lineage, queries, recovery,
               retrying, scattering, sharing, taking_back, task_specs, task_stream)
from .events import (ClientConnected, ClientDisconnected, ClientSent, CoordinationTimedOut,
                     DetachedTimedOut, Event, Recovering, RecoveryTimedOut, RestartTimedOut,
                     TaskFailed, TimeElapsed, WaitTimedOut, WorkerJoined, WorkerLeft,
                     WorkerSent)
# (their home before ``departures``; importers of this module find them here as well)
from .departures import ALLOWED_FAILURES, actor_lost, memory_in_use  # noqa: F401
from .graph_parts import GraphParts
from .invariants import check_table, validate_state
# The records and the machine live apart; importers of this module find them here as well.
from .records import (ACTIVE, NONE, STATES, Dataset, Keys, TaskState,  # noqa: F401
                      WorkerInfo, added, joined, key_prefix, left, removed)
from .rebalancing import Rebalances
from .retirement import Retirements
from .stories import Stories
from .task_messages import compute_message
from .worker_queries import WorkerQueries
from .plugins import Plugins
from .uploads import Uploads
from .worker_restarts import WorkerRestarts
from .blocks import BlockMachine
from .transition_table import TRANSITIONS
from .transitions import Outgoing
from .worker_feed import WorkerFeed


# After this many tasks were released (and at most half the peak is left), the big tables are
# rebuilt: dicts and sets keep their peak size after deletions.
COMPACT_AFTER_RELEASING = 10_000


class CenterState(BlockMachine):
    __slots__ = (  # (declared, as the machine's are: see TaskMachine)
        "restarting", "stories", "peak_tasks", "compactions", "datasets", "graph_parts", "plugins",
        "_stimuli", "durable", "detached", "awaiting_workers", "coordination", "_handlers",
        "_client_ops", "retirements", "_worker_ops", "uploads", "plugins", "cancels_dependents",
        "rebalances", "silent_deaths", "worker_feed", "worker_queries", "worker_restarts")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        # Restarts not yet answered: (client, request id) -> workers to wait for.
        self.restarting: dict[tuple[str, int], int] = {}
        self.stories = Stories()  # a key's story, gathered from the workers
        self.worker_queries = WorkerQueries()  # what the workers run now, asked for clients
        self.peak_tasks = 0  # since the tables were last compacted
        self.compactions = 0  # the server gives memory back to the system after each
        self.datasets: dict[str, Dataset] = {}  # published by name
        self.graph_parts = GraphParts()  # graphs whose last part has not come yet
        self.uploads = Uploads()  # files for every worker; a restart keeps them, as dask's
        self.plugins = Plugins()  # worker plugins, kept likewise
        # clients whose cancel takes the tasks reading the keys with it (see ``cancelling``)
        self.cancels_dependents: set[str] = set()
        self.worker_feed = WorkerFeed()  # clients told of workers joining and leaving
        # Workers removed for silence -> the tasks that counted it as a death: if it registers
        # again, it was busy, not dead (a task held the GIL), and they take the death back.
        self.silent_deaths: dict[str, list[str]] = {}
        self._stimuli = itertools.count(1)
        # With a state directory (see ``store``): the center keeps its state across a restart
        # of its own. Clients known from before it are ``detached`` until they resume their
        # sessions; the workers from before are awaited (``recovering``) before tasks run.
        self.durable = False
        self.detached: set[str] = set()
        self.awaiting_workers: set[str] = set()
        self.coordination = coordination.Coordination(lambda key: key in self.tasks)
        self.worker_restarts = WorkerRestarts()  # restart_workers, until each is back
        self._handlers: dict[type, Callable[[Any, str], None]] = {
            ClientConnected: self._client_connected,
            ClientDisconnected: self._client_disconnected,
            ClientSent: self._client_sent,
            WorkerJoined: self._worker_joined,
            WorkerLeft: self._worker_left,
            RestartTimedOut: self._restart_timed_out,
            TimeElapsed: self._time_elapsed,
            Recovering: partial(recovery.recovering, self),
            RecoveryTimedOut: partial(recovery.recovery_timed_out, self),
            DetachedTimedOut: partial(recovery.detached_timed_out, self),
            TaskFailed: partial(recovery.task_failed, self),
            CoordinationTimedOut: lambda event, sid: self._coordinated(
                self.coordination.timed_out(event.client, event.request), sid),
            WaitTimedOut: lambda event, sid: self._send_all(
                self.worker_restarts.timed_out(event.client, event.request)
                if event.op == "restart-workers"
                else self.waits.timed_out(self, event.client, event.op, event.request)),
        }
        self._client_ops: dict[type, Callable[[str, Any, str], None]] = {
            Submit: self._submit, Release: self.release, Cancel: partial(cancelling.cancel, self),
            WhoHas: self._who_has, ScatterPlan: partial(scattering.scatter_plan, self),
            ScatterDone: partial(scattering.scatter_done, self),
            ClusterInfo: self._cluster_info, Replicate: self._replicate,
            Restart: self._restart,
            RestartWorkers: lambda client, msg, sid: self._send_all(
                self.worker_restarts.request(self.workers, self.names, client, msg)),
            Session: partial(recovery.session, self),
            Story: lambda client, msg, sid: self._send_all(self.stories.ask(
                client, msg, self.story(*msg.keys), self.workers)),
            PublishDataset: partial(sharing.publish, self),
            GetDataset: partial(sharing.get, self), ListDatasets: partial(sharing.names, self),
            UnpublishDataset: partial(sharing.unpublish, self),
            WantKeys: partial(sharing.want_keys, self),
            FireAndForget: partial(sharing.fire_and_forget, self),
            Retry: partial(retrying.retry, self),
            GetTaskSpec: lambda client, msg, sid: self.outbox.send(client,
                                                            task_specs.answer(self, client, msg)),
            UploadFile: lambda client, msg, sid: self.outbox.send(client, UploadFileReply(
                id=msg.id, error=self.uploads.keep(msg.file))),
            RegisterPlugin: lambda client, msg, sid: self.outbox.send(client,
                                                               self.plugins.register(msg)),
            UnregisterPlugin: lambda client, msg, sid: self.outbox.send(client,
                                                                 self.plugins.unregister(msg)),
            TaskStream: lambda client, msg, sid: self.outbox.send(client, task_stream.answer(
                self.task_stream, self.task_stream_count, msg)),
            WorkerQuery: lambda client, msg, sid: self._send_all(self.worker_queries.ask(
                client, msg, self.workers)),
            Coordinate: lambda client, msg, sid: self._coordinated(
                self.coordination.request(client, msg), sid),
        }
        self.retirements = Retirements()  # graceful retirement and adaptive-target
        self.rebalances = Rebalances()
        self._client_ops[Rebalance] = lambda client, msg, sid: self.rebalances.start(
            self, client, msg)
        self._client_ops.update(self.retirements.client_ops(self))
        self._worker_ops: dict[type, Callable[[str, Any, str], None]] = {
            TaskFinished: self._task_finished, TaskErred: self._task_erred,
            KeysAdded: partial(scattering.keys_added, self), MissingData: self._missing_data,
            Heartbeat: partial(taking_back.heartbeat, self), Unregister: self._unregister,
            StealReply: partial(taking_back.steal_reply, self),
            StoryReply: lambda address, msg, sid: self._send_all(self.stories.reply(address, msg)),
            WorkerQueryReply: lambda address, msg, sid: self._send_all(
                self.worker_queries.reply(address, msg)),
            TaskSeceded: self._task_seceded,
            RestartingForMemory: partial(departures.restarting_for_memory, self),
            WorkerTerminated: partial(departures.worker_terminated, self),
        }

    # -- the one entry point -----------------------------------------------------------------
    def handle(self, *events: Event) -> Outgoing:
        self.now = self.clock()
        sid = "refill"
        handlers, counter = self._handlers, self._stimuli
        worker_ops, workers, tasks = self._worker_ops, self.workers, self.tasks
        # A worker's run of results, taken as one block (see ``blocks``) once the run ends.
        # (No run yet: the shared empty list, never appended to, since no worker's address is
        # "" and a run's first result makes the run's lists; a graph's steps make none.)
        results: list[TaskFinished] = _NO_RUN
        result_sids: list[str] = _NO_RUN
        results_from = ""
        for event in events:
            sid = event.stimulus_id
            if isinstance(event, WorkerSent):  # most events: dispatched on their message here
                message = event.message
                if not sid:  # named by what happened, numbered (cheaply: one per task)
                    sid = _STIMULUS_PREFIX[type(message)] + str(next(counter))
                self.messages_handled += 1
                # A plain task's result joins the worker's run, a block once the run ends (see
                # ``blocks``); a graph's task's goes alone, at once.
                if type(message) is TaskFinished and (ts := tasks.get(message.key)) is not None \
                        and not ts.deps and not ts.dependents:
                    if event.worker != results_from:
                        if results:
                            self._results(results_from, results, result_sids)
                        results, result_sids, results_from = [], [], event.worker
                    results.append(message)
                    result_sids.append(sid)
                    continue
                if results:
                    self._results(results_from, results, result_sids)
                    results, result_sids, results_from = _NO_RUN, _NO_RUN, ""
                handler = worker_ops.get(type(message))
                # (a worker considered gone re-registers before it is heard again)
                if handler is not None and event.worker in workers:
                    handler(event.worker, message, sid)
                continue
            if results:
                self._results(results_from, results, result_sids)
                results, result_sids, results_from = _NO_RUN, _NO_RUN, ""
            if not sid:
                named = event.message if isinstance(event, ClientSent) else event
                sid = _STIMULUS_PREFIX[type(named)] + str(next(counter))
            handlers[type(event)](event, sid)
        if results:
            self._results(results_from, results, result_sids)
        # The step's epilogue. Each part runs only if an event of the step (or a request
        # still open) gave it something to do: most steps give none of them anything, and
        # calling each to find that out cost more than the rest of an empty step.
        while self.outbox.fired_and_ended:
            sharing.forget_ended(self, self.outbox.take_fired_and_ended(), sid)
        waits = self.waits
        if (waits.workers or waits.plans or waits.replicas or waits.workers_changed
                or waits.touched):
            self._waits_progress(sid)
        retirements = self.retirements
        if retirements.retiring or retirements.requests:
            retirements.progress(self, sid)
        if self.rebalances.requests:
            self.rebalances.progress(self)
        if self._slots_freed or self._resources_freed:
            self.refill(sid)  # what the step freed is taken up as part of its last event
        if self._may_steal:
            self.request_steals()
        return self.take_outgoing()

    # -- clients ---------------------------------------------------------------------------
    def _client_connected(self, event: ClientConnected, sid: str) -> None:
        self.clients.setdefault(event.client, set())
        if "key-recomputing" in event.features:
            self.told_of_recomputing.add(event.client)
        if cancelling.FEATURE in event.features:
            self.cancels_dependents.add(event.client)
        self._send_all(self.worker_feed.client_connected(event.client, event.features,
                                                         self.workers))

    def forget_client(self, client: str, sid: str) -> None:
        """As if ``client`` disconnected: what it wanted is released."""
        self._client_disconnected(ClientDisconnected(client), sid)

    def _client_disconnected(self, event: ClientDisconnected, sid: str) -> None:
        self.detached.discard(event.client)
        self.small_values_for.pop(event.client, None)
        self.told_of_recomputing.discard(event.client)
        self.cancels_dependents.discard(event.client)
        self.worker_feed.client_left(event.client)
        self.retirements.client_left(event.client)
        self.rebalances.client_left(event.client)
        for pending in [p for p in self.restarting if p[0] == event.client]:
            del self.restarting[pending]
        self.stories.client_left(event.client)
        self.worker_queries.client_left(event.client)
        self.waits.client_left(event.client)
        self.worker_restarts.client_left(event.client)
        self._coordinated(self.coordination.client_left(event.client), sid)
        for key in list(self.clients.pop(event.client, ())):
            ts = self.tasks.get(key)
            if ts is not None:
                ts.wanted_by = left(ts.wanted_by, event.client)
                self.transition(ts, "forgotten", sid)
        self._forget_unneeded(self.graph_parts.client_left(event.client), sid)
        self.alone.forget(event.client)

    def _client_sent(self, event: ClientSent, sid: str) -> None:
        self.messages_handled += 1
        if event.client not in self.clients:  # (not ``setdefault``: a set made each message)
            self.clients[event.client] = set()
        handler = self._client_ops.get(type(event.message))
        if handler is not None:
            handler(event.client, event.message, sid)

    def want(self, client: str, ts: TaskState) -> None:
        ts.wanted_by = joined(ts.wanted_by, client, self.alone)
        self.clients[client].add(ts.key)

    def _send_all(self, messages: Outgoing) -> None:
        for to, message in messages:
            self.outbox.send(to, message)

    def _coordinated(self, orders: list[coordination.Order], sid: str) -> None:
        """Carry out what the primitives decided: replies, and keys held or let go."""
        for order in orders:
            if isinstance(order, coordination.Send):
                self.outbox.send(order.to, order.message)
            elif isinstance(order, coordination.Want):
                self.clients.setdefault(order.holder, set())
                for key in order.keys:
                    if (ts := self.tasks.get(key)) is not None:
                        self.want(order.holder, ts)
                        self.report_existing(order.holder, ts)
                    elif not sharing.is_holder(order.holder):  # forgotten (by a restart)
                        self.outbox.send(order.holder, KeyLost(key=key, message=(
                            f"{key} was put into a coordination primitive, and the center "
                            "no longer has it (the cluster restarted)")))
            else:
                self.release(order.holder, Release(keys=order.keys), sid)
                if sharing.is_holder(order.holder) and not self.clients.get(order.holder, 1):
                    del self.clients[order.holder]  # holds nothing more (a restart empties it)

    def _submit(self, client: str, msg: Submit, sid: str) -> None:
        if msg.small_values:
            self.small_values_for[client] = tuple(msg.small_values_serializers or ("pickle",))
        wanted = None if msg.wanted is None else set(msg.wanted)
        fresh: list[TaskState] = []
        touched: list[TaskState] = []
        linked = False  # some fresh task has inputs (a map's have none: no cycle to look for)
        tasks, order, prefix_of = self.tasks, self.task_order, self.prefix_of.of
        wants = self.clients[client]
        alone = self.alone.of(client)  # the set most tasks are wanted by
        for spec in msg.tasks:
            key = spec.key
            ts = tasks.get(key)
            if ts is None or (ts.state in ("released", "lost") and ts.scattered):
                dependents: Keys = NONE
                if ts is not None:  # scattered data gone: from now on a task computes it
                    dependents = ts.dependents
                    self.transition(ts, "forgotten", sid, True)
                ts = TaskState(key, spec, next(order), prefix_of(key))
                if dependents:
                    ts.dependents = dependents
                tasks[key] = ts
                fresh.append(ts)
                if ts.deps:
                    linked = True
            touched.append(ts)
            if wanted is None or key in wanted:
                if ts.wanted_by:
                    ts.wanted_by = joined(ts.wanted_by, client, self.alone)
                else:
                    ts.wanted_by = alone
                wants.add(key)
                if ts.state in _REPORTED:
                    self.report_existing(client, ts)
        if linked:
            for ts in fresh:
                if ts.deps:
                    self._link(ts, sid)
            for ts in lineage.in_cycles(fresh):
                self.transition(ts, "erred", sid, lineage.cyclic(ts))
        if msg.more:
            # Later parts read these: none is forgotten until the last part. What is wanted
            # already (and its inputs) runs now, while the client is still sending the rest.
            self.graph_parts.add(client, msg.graph, touched, fresh)
            self.bring_back(touched, sid)
            return
        earlier = self.graph_parts.finish(client, msg.graph)
        if earlier is not None:  # the last part: the graph is handled as one submit from here
            touched = earlier.touched + touched
            fresh = earlier.fresh + fresh
        self.bring_back(touched, sid)
        self._forget_unneeded(fresh, sid)

    def _forget_unneeded(self, fresh: list[TaskState], sid: str) -> None:
        for ts in fresh:
            if ts.state == "released":  # neither wanted nor needed: nothing to keep it for
                self.transition(ts, "forgotten", sid)

    def report_existing(self, client: str, ts: TaskState) -> None:
        if ts.state == "memory":
            self.outbox.send(client, KeyInMemory(key=ts.key, nbytes=ts.nbytes, type=ts.type,
                                           workers=sorted(ts.who_has),
                                           type_pickled=ts.type_pickled))
        elif ts.state == "erred" and ts.error is not None:
            self.outbox.send(client, replace(ts.error, key=ts.key))
        elif ts.state == "lost":
            self.outbox.send(client, KeyLost(key=ts.key, message=ts.lost_message))

    def _link(self, ts: TaskState, sid: str) -> None:
        tasks = self.tasks
        deps = ts.deps
        missing = []
        for at, dep in enumerate(deps):
            dts = tasks.get(dep)
            if dts is None:
                missing.append(dep)
                continue
            # The input's own string, not the copy decoded from this task's list: one string
            # per key, however many tasks read it (equal, so the spec says the same).
            if type(deps) is list:
                deps[at] = dts.key
            dts.dependents = added(dts.dependents, ts.key)
        if missing:
            ts.deps = tuple(dep for dep in deps if dep in tasks)
            self.transition(ts, "erred", sid, lineage.missing_inputs(ts, missing))

    def release(self, client: str, msg: Release, sid: str) -> None:
        self.forgotten_block(client, msg.keys, sid)

    def _who_has(self, client: str, msg: WhoHas, sid: str) -> None:
        self.outbox.send(client, queries.who_has(self, msg))

    def _replicate(self, client: str, msg: Replicate, sid: str) -> None:
        if msg.id is not None:  # answered once the copies exist (feature waits)
            msg = replace(msg, n=max(1, min(msg.n, queries.replica_workers(self, msg))))
        for address, order in queries.replica_orders(self, msg).items():
            self.outbox.send(address, order)
        if msg.id is not None:
            self._send_all(self.waits.replicate(self, client, msg))

    def _waits_progress(self, sid: str) -> None:
        """Answer the waits this step's events ended (see ``waits``)."""
        waits = self.waits
        if waits.workers_changed and self.worker_restarts:
            self._send_all(self.worker_restarts.progress(self.workers))
        if not waits:
            waits.touched.clear()
            waits.workers_changed = False
            return
        replies, plans = waits.progress(self)
        self._send_all(replies)
        for client, plan in plans:
            scattering.scatter_plan(self, client, plan, sid)

    def _restart(self, client: str, msg: Restart, sid: str) -> None:
        """Forget every task and restart every worker; clients' futures are cancelled. The
        client hears back once as many workers as before have registered again (or when its
        timeout passes: the server then sends ``RestartTimedOut``)."""
        expected = len(self.workers)
        for other, keys in list(self.clients.items()):
            for key in keys:
                self.outbox.send(other, KeyCancelled(key=key))
            keys.clear()
            if sharing.is_holder(other):
                del self.clients[other]
        for address in list(self.workers):
            self.outbox.send(address, RestartWorker(reason=f"restart requested by {client}"))
        # Every task goes at once: no worker keeps anything, so there is nothing to free,
        # run or tell; the log still says where each task went.
        for ts in self.tasks.values():
            self.transition_log.append((ts.key, ts.state, "forgotten", sid, self.now))
            ts.state = "forgotten"
        self.tasks.clear()
        self.graph_parts.clear()
        self.task_counts.clear()
        self.workers.clear()
        self.names.clear()
        self.datasets.clear()  # their keys are gone with every other key
        self.queue.clear()
        self.unrunnable.clear()
        self.stealing.clear()
        self.cancelling_unstarted.clear()
        self.waiting_for_resources.clear()
        self.resources_unranked.clear()
        self.held.clear()
        self.restarting[(client, msg.id)] = expected
        self.waits.workers_changed = True  # (and every key is gone)
        self._restart_progress()

    def _restart_progress(self, timed_out: tuple[str, int] | None = None) -> None:
        for (client, request), expected in list(self.restarting.items()):
            if len(self.workers) >= expected or (client, request) == timed_out:
                del self.restarting[(client, request)]
                self.outbox.send(client, RestartReply(id=request, workers=len(self.workers),
                                               expected=expected))

    def _restart_timed_out(self, event: RestartTimedOut, sid: str) -> None:
        self._restart_progress(timed_out=(event.client, event.request))

    def _cluster_info(self, client: str, msg: ClusterInfo, sid: str) -> None:
        self._send_all(self.waits.cluster_info(self, client, msg))

    def worker_table(self) -> list[dict]:
        return queries.worker_table(self)

    # -- workers joining and leaving ---------------------------------------------------------
    def _worker_joined(self, event: WorkerJoined, sid: str) -> None:
        reg: RegisterWorker = event.registration
        carried: set[str] = set()
        departures.silent_worker_back(self, reg.address)
        previous = self.workers.get(reg.address)
        if previous is not None:
            # Registered again before its old connection was noticed gone: what it still holds
            # stays where it is, instead of being lost and recomputed; its tasks start over.
            carried = previous.has_what & reg.keys.keys()
            previous.has_what -= carried
            self._worker_left(WorkerLeft(reg.address, "registered again", graceful=True), sid)
        name = reg.name or reg.address
        worker = WorkerInfo(reg.address, name, reg.nthreads, reg.memory_limit, reg.resources)
        if "dispatch-ahead" in event.features:
            worker.ahead = set()
        worker.sends_msgpack_values = "small-values-msgpack" in event.features
        worker.nanny = reg.nanny
        worker.has_what = carried
        if event.environment is not None:
            worker.environment = asdict(event.environment)
            worker.pickle_tag = pickle_tag(event.environment)
        worker.nbytes = sum(self.tasks[key].nbytes for key in carried)
        self.workers[reg.address] = worker
        self.waits.workers_changed = True
        self._send_all(self.worker_feed.worker_joined(worker))
        self.forget_capacity(reg.address)
        self.names[name] = reg.address
        self.stories.worker_joined(reg.address, event.features)
        self.worker_queries.worker_joined(reg.address, event.features)
        self.retirements.worker_joined(reg.address, event.features)
        self.outbox.send(reg.address, WorkerRegistered(address=reg.address,
                                                uploads=self.uploads.all(),
                                                plugins=self.plugins.all()))
        stale = []
        for key, nbytes in reg.keys.items():
            ts = self.tasks.get(key)
            if ts is None or not self._accept_result(ts, worker, nbytes, ts.type, None, sid):
                stale.append(key)
        if stale:
            self.outbox.send(reg.address, FreeKeys(keys=stale))
        recovery.worker_back(self, reg.address, sid)
        for ts in self.held.worker_back(reg.address):  # (its result did not come with it)
            departures.let_go_held(self, ts, sid)
        self.retry_unrunnable(sid)
        self.fill(worker, sid)
        self._restart_progress()

    def retry_unrunnable(self, sid: str) -> None:
        """A worker joined or resumed: tasks no worker could take may run now."""
        if self.recovering:
            return
        for key in list(self.unrunnable):
            ts = self.tasks.get(key)
            if ts is not None and self.held.holds_back(ts):
                continue
            self.unrunnable.discard(key)
            if ts is not None and ts.state == "no-worker":
                self.transition(ts, "processing", sid)

    def _accept_result(self, ts: TaskState, worker: WorkerInfo, nbytes: int, type_: str,
                       finished: TaskFinished | None, sid: str) -> bool:
        """Record that ``worker`` holds ``ts``'s value; False when the value is not wanted."""
        if ts.state == "memory":
            self.add_replica(ts, worker)
            return True
        if ts.state not in ACTIVE or not (ts.wanted_by or lineage.needed(self, ts)):
            return False
        self.transition(ts, "memory", sid, (worker.address, nbytes, type_, finished))
        return True

    def _unregister(self, address: str, msg: Unregister, sid: str) -> None:
        self._worker_left(WorkerLeft(address, "unregistered", graceful=True), sid)

    def _worker_left(self, event: WorkerLeft, sid: str) -> None:
        worker = self.workers.pop(event.worker, None)
        if worker is None:
            if event.worker in self.silent_deaths and not event.graceful:
                departures.silent_worker_died(self, event, sid)
            return
        self.waits.workers_changed = True
        self._send_all(self.worker_feed.worker_left(worker.address))
        self._send_all(self.stories.worker_left(worker.address))
        self._send_all(self.worker_queries.worker_left(worker.address))
        # Its pending steals, either way, will never be answered or used.
        for key in balance.stale_steals(self, worker.address):
            del self.stealing[key]
        # Those asked back to be cancelled never finished there: not started, they go.
        asked_back = cancelling.worker_leaving(self, worker.address)
        if self.names.get(worker.name) == worker.address:
            del self.names[worker.name]
        worker.status = "closed"
        self.retirements.worker_left(worker.address)
        departures.worker_gone(self, worker, event, asked_back, sid)

    # -- results from workers ----------------------------------------------------------------
    def _results(self, address: str, results: list[TaskFinished], sids: list[str]) -> None:
        """A worker's run of results, in order: blocks of plain ones (``finished_block``),
        each other one alone."""
        worker = self.workers.get(address)
        if worker is None:  # (a worker considered gone re-registers before it is heard again)
            return
        at, end = 0, len(results)
        while at < end:
            at = self.finished_block(worker, results, sids, at)
            if at < end:
                self._task_finished(address, results[at], sids[at])
                at += 1

    def _task_finished(self, address: str, msg: TaskFinished, sid: str) -> None:
        worker = self.workers[address]
        ts = self.tasks.get(msg.key)
        if ts is not None and ts.processing_on == address:
            # (``_accept_result`` for the run the center waits for, without the call)
            if ts.state in ACTIVE and (ts.wanted_by or lineage.needed(self, ts)):
                self.transition(ts, "memory", sid, (address, msg.nbytes, msg.type, msg))
            self.record_run(ts, address, msg)
        elif (self.recovering and ts is not None and ts.state in ACTIVE
              and self._accept_result(ts, worker, msg.nbytes, msg.type, msg, sid)):
            # A task the worker ran for the center before its restart: nothing was sent to
            # the worker since it registered again, so the value is there.
            self.record_run(ts, address, msg)
        elif ts is None or address not in ts.who_has:  # (a holder telling twice is no news)
            # Not the run the center waits for. The center may have asked this worker to free
            # the key since (the messages crossed), so whether the worker still holds the value
            # is unknown: make sure it does not, rather than send readers to a missing copy.
            self.outbox.free(address, msg.key)
        self.fill(worker, sid)

    def _task_seceded(self, address: str, msg: TaskSeceded, sid: str) -> None:
        """The task runs on without its thread slot: the worker can take another task."""
        worker = self.workers[address]
        ts = self.tasks.get(msg.key)
        if ts is not None and ts.state == "processing" and ts.processing_on == address:
            worker.long_running.add(msg.key)
            self.forget_capacity(address)
            self.fill(worker, sid)

    def _task_erred(self, address: str, msg: TaskErred, sid: str) -> None:
        worker = self.workers[address]
        ts = self.tasks.get(msg.key)
        if ts is not None and ts.state == "processing" and ts.processing_on == address:
            if msg.reschedule:
                # dask's Reschedule: not an error (no retry spent, nothing in the task
                # stream); placed afresh, as a new task would be
                self.transition(ts, "waiting", sid, True)
                self.transition(ts, "processing", sid)
            else:
                if msg.start is not None and msg.stop is not None:
                    self.task_stream.append((msg.key, address, msg.start, msg.stop, 0,
                                             "error", msg.transfers))
                    self.task_stream_count += 1
                    # the run's times are the center's record, not the clients' error
                    msg = dataclasses.replace(msg, start=None, stop=None, transfers=[])
                self.failed(ts, msg, sid)
        self.fill(worker, sid)

    def failed(self, ts: TaskState, msg: TaskErred, sid: str) -> None:
        # The worker has forgotten the task already.
        self.transition(ts, "waiting", sid, True)
        if ts.retries_left > 0:
            ts.retries_left -= 1
            self.transition(ts, "processing", sid)
        else:
            self.transition(ts, "erred", sid, msg)

    def _missing_data(self, address: str, msg: MissingData, sid: str) -> None:
        ts = self.tasks.get(msg.key)
        if ts is None:
            return
        holder = self.workers.get(msg.worker)
        if msg.worker in ts.who_has:
            ts.who_has = left(ts.who_has, msg.worker)
            if self.waits.watched:
                self.waits.touch(ts.key)
            if holder is not None:
                holder.has_what.discard(ts.key)
                holder.nbytes -= ts.nbytes
                # It may hold the key yet fail to serve it; no longer counted, it must not
                # keep it either, or the copy would never be freed.
                self.outbox.free(holder.address, ts.key)
        if ts.state == "memory" and not ts.who_has:
            departures.lose(self, [ts], f"worker {msg.worker} no longer had it", sid)
        elif ts.state == "memory":
            for dep_key in ts.dependents:
                dts = self.tasks[dep_key]
                if dts.state == "processing" and dts.processing_on == address:
                    self.outbox.send(address, compute_message(
                        self.tasks, self.small_values_for, dts, self.workers[address]))

    # -- housekeeping --------------------------------------------------------------------------
    def _time_elapsed(self, event: TimeElapsed, sid: str) -> None:
        """Fail the tasks held past the limit; after a big release, rebuild the big tables
        (the server then trims the heap)."""
        if self.held.holds:
            for ts, error in self.held.overdue(self.now):
                self.transition(ts, "erred", sid, error)
            self.held.drop_ended()
        tasks = len(self.tasks)
        self.peak_tasks = max(self.peak_tasks, tasks)
        if self.peak_tasks - tasks >= COMPACT_AFTER_RELEASING and tasks <= self.peak_tasks // 2:
            self._compact()
            self.peak_tasks = tasks
            self.compactions += 1

    def _compact(self) -> None:
        """Rebuild the big tables: dicts and sets keep their peak size after deletions."""
        self.tasks = dict(self.tasks)
        self.clients = {client: set(keys) for client, keys in self.clients.items()}
        for worker in self.workers.values():
            worker.has_what = set(worker.has_what)
            worker.processing = dict(worker.processing)
        self.unrunnable = set(self.unrunnable)
        self.stealing = dict(self.stealing)
        # The histories outlive the burst that wrote them, and their entries (and the keys
        # they name) sit in memory pages allocated during it: scattered, a few thousand keep
        # most of those pages from going back to the system. Only entries about tasks still
        # known stay; the dashboard has shown the rest as they happened.
        tasks = self.tasks
        self.transition_log = deque((t for t in self.transition_log if t[0] in tasks),
                                 maxlen=self.transition_log.maxlen)
        self.task_stream = deque((t for t in self.task_stream if t[0] in tasks),
                                 maxlen=self.task_stream.maxlen)

    def validate(self) -> None:
        """Assert every invariant, and that the table knows every state; tests call this after
        each step."""
        check_table(TRANSITIONS)
        # (the steal planner is skipped while this is unset: it would have nothing to take)
        assert self._may_steal or not balance.any_unstarted(self), "a steal check skipped"
        validate_state(self, self.graph_parts.kept())
        self.waits.validate(self)
        self.coordination.validate()



# States a client submitting the key again is told of at once (see report_existing).
_REPORTED = frozenset({"memory", "erred", "lost"})
_NO_RUN: list[Any] = []  # ``handle``'s run of results before it has one (never appended to)

_STIMULUS_PREFIX: dict[type, str] = {
    ClientConnected: "client-connected-", ClientDisconnected: "client-disconnected-",
    WorkerJoined: "worker-joined-", WorkerLeft: "worker-left-",
    RestartTimedOut: "restart-timed-out-", TimeElapsed: "time-elapsed-",
    Recovering: "recovering-", RecoveryTimedOut: "recovery-timed-out-",
    DetachedTimedOut: "detached-timed-out-", TaskFailed: "task-failed-",
    CoordinationTimedOut: "coordination-timed-out-", WaitTimedOut: "wait-timed-out-",
    **{cls: f"{op}-" for op, cls in OPS.items()}}
