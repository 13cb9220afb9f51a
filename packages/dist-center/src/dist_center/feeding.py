"""Handing queued tasks to workers: a worker's slots filled from the queue, in turn.

The transition table's handlers queue a ready task when no worker has a free slot for it
(``_to_queued``), and note the workers whose slots or resources a step frees (``_take_back``);
at the step's end ``refill`` hands those workers queued tasks up to their capacity (``fill``,
also called as a worker joins or its results arrive), then starts the tasks waiting for
resources that now fit; ``request_steals`` asks workers given more tasks than they have
threads to give some back for idle ones (``balance``). The moves themselves go through the
table (``queued -> processing``), or, for a map's plain tasks, through the same move written
out once (see ``blocks``).
"""
from __future__ import annotations

from dist_protocol.messages import StealRequest

from . import balance, placement
from .placement import MAX_MARGIN_PER_THREAD, SHORTEST
from .records import WorkerInfo
from .task_messages import compute_message, compute_task
from .transitions import TaskMachine, start_rank


class FeedingMachine(TaskMachine):
    __slots__ = ()

    def refill(self, sid: str) -> None:
        # (a worker that cannot run the first queued task hands the turn on to those that
        # can: another round, until nothing is handed on)
        while self._slots_freed:  # (most steps free none: no new table for them)
            freed, self._slots_freed = self._slots_freed, {}
            for address in freed:
                worker = self.workers.get(address)
                if worker is not None:
                    self.fill(worker, sid)
        if self._resources_freed and self.waiting_for_resources:
            self._place_waiting_for_resources(sid)

    def _place_waiting_for_resources(self, sid: str) -> None:
        """Resources were freed: start waiting tasks, highest priority first, while each kind
        still fits (tasks asking for the same resources wait in one group; the first that does
        not fit ends that group's turn)."""
        self._resources_freed = False
        tasks = self.tasks
        for wanted, group in list(self.waiting_for_resources.items()):
            if wanted in self.resources_unranked:
                self.resources_unranked.discard(wanted)
                # (a key no longer known goes first, to be dropped below)
                ranked = sorted(group, key=lambda key: start_rank(tasks[key])
                                if key in tasks else (-(2**63), 0))
                group.clear()
                group.update(dict.fromkeys(ranked))
            for key in list(group):
                ts = self.tasks.get(key)
                if ts is None or ts.state != "queued":
                    del group[key]
                    continue
                target = placement.decide(self, ts)
                if target == "queued":
                    break
                del group[key]
                if target == "no-worker":  # no worker has them at all any more
                    self.transition(ts, "waiting", sid)
                    self.transition(ts, "processing", sid)
                else:
                    self.transition(ts, "processing", sid, target.address)  # type: ignore[union-attr]
            if not group:
                del self.waiting_for_resources[wanted]

    def fill(self, worker: WorkerInfo, sid: str) -> None:
        """Hand ``worker`` queued tasks up to its capacity."""
        if worker.resources:
            self._resources_freed = True
        queue = self.queue
        if not (queue.run or queue.out_of_turn) or worker.status != "running" \
                or worker.address not in self.workers:
            return
        address = worker.address
        # (``capacity_of`` written out for its usual answer: a map's results each move the
        # average, but tasks this short keep the largest margin, so the capacity worked out
        # before still holds)
        capacities = self.capacities
        capacity = capacities.by_worker.get(address)
        basis = capacities.basis
        if capacity is None or basis[2] != MAX_MARGIN_PER_THREAD \
                or not 0 < self.avg_duration <= SHORTEST or self.worker_saturation != basis[1]:
            capacity = self.capacity_of(worker)
        tasks = self.tasks
        tag = worker.pickle_tag
        processing = worker.processing
        in_blocks = self.in_blocks
        # (``worker.assigned`` written out: it is asked twice a task)
        brief = worker.brief
        while len(processing) - (len(worker.ahead) if worker.ahead else 0) - len(brief) \
                < capacity:
            try:  # (rather than asking the queue whether it is empty before each pop)
                key = queue.pop()
            except IndexError:
                return
            ts = tasks.get(key)
            if ts is not None and ts.state == "queued":
                spec = ts.spec
                # (the usual case, a task of the worker's own Python, decided by the first
                # two tests)
                if spec is not None and spec.pickled_with != tag and tag is not None \
                        and spec.pickled_with is not None:
                    others = placement.only_other_pythons(self, ts)
                    if others:  # no worker it may wait for: it errs as any of them would
                        self.transition(ts, "erred", sid, placement.other_python_error(ts, others))
                        continue
                    queue.push(key, spec.priority, ts.order)  # back in its turn
                    self._hand_turn_on(spec.pickled_with)
                    return
                if ts.dependents:
                    if len(self.workers) > 1:
                        cousin = placement.cousin_choice(self, ts, worker, queue)
                        if cousin is not None:  # ts waits for the worker its cousins are on
                            queue.push(key, spec.priority if spec is not None else 0, ts.order)
                            ts = cousin
                elif spec is not None and in_blocks and ts.counts is not None:
                    # The table's queued -> processing for a task no other depends on (what
                    # ``_to_processing`` does for it, written out): the fill of a map's
                    # results hands over one such task for each (see ``blocks``).
                    if self.unrunnable:
                        self.unrunnable.discard(key)
                    self.transition_log.append((key, "queued", "processing", sid, self.now))
                    counts = ts.counts
                    counts["queued"] -= 1
                    counts["processing"] += 1
                    ts.state = "processing"
                    ts.processing_on = address
                    processing[key] = None
                    if not self._may_steal and worker.unstarted_above_threads:
                        self._may_steal = True
                    if ts.deps:
                        self.outbox.send(address, compute_message(tasks, self.small_values_for, ts,
                                                           worker))
                        continue
                    # (``compute_message`` and ``send`` for a task without inputs, written
                    # out: one a task of a map)
                    msgpack_too = False
                    if worker.sends_msgpack_values:
                        for client in ts.wanted_by:
                            forms = self.small_values_for.get(client)
                            if forms is not None and "msgpack" in forms:
                                msgpack_too = True
                                break
                    outbox = self.outbox
                    outbox.messages.append((address, compute_task(
                        key, spec.function, spec.args, {}, {}, spec.priority,
                        spec.pickled_with, spec.actor or None, None, msgpack_too)))
                    open_frees = outbox.open_frees
                    if open_frees and address in open_frees:
                        open_frees[address][1].add(key)
                    continue
                self.transition(ts, "processing", sid, address)

    def _hand_turn_on(self, tag: str) -> None:
        """The first queued task was pickled on another Python than the worker being filled
        runs: the workers that can run it and have room are filled instead (with no such
        worker, it waits for one to join or to free a slot)."""
        for worker in self.workers.values():
            if (worker.status == "running" and worker.runs_pickles_of(tag)
                    and worker.assigned < self.capacity_of(worker)):
                self._slots_freed[worker.address] = None

    def request_steals(self) -> None:
        """Ask busy workers to give up waiting tasks for the workers with idle threads."""
        if not balance.any_unstarted(self):
            self._may_steal = False  # (until a worker is given more tasks than threads again)
            return
        for victim, thief, keys in balance.plan(self):
            for key in keys:
                self.stealing[key] = thief
            self.outbox.send(victim, StealRequest(keys=keys))
