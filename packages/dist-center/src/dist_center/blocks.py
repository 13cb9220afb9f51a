"""Blocks: many tasks moved by one pass of the machine, where a map moves them by the thousand.

A map's tasks come in a submit of thousands, finish in a worker's batch of dozens of
``task-finished`` and are let go of in a release of thousands. Taken one at a time, each went
through the whole chain of calls made for any task (the step's dispatch, the handler, the
table, the state's handler, the log, the run's statistics, the worker's fill): some twenty
Python calls a task around the few dozen operations that are the work itself. Here the tasks
of such a block that are plain (no inputs, no dependents; for a result, wanted and finished
where it was sent) move in one loop, with every effect the table's handlers have for them:

- ``finished_block``: ``processing -> memory``, as ``_to_memory``: the log entry under the
  result's own stimulus id, the per-prefix counts, the holder's tables, the clients told (the
  small value along for those that asked), the run in the task stream and the averages, and,
  after each result, the fill that its own event made, so the worker is handed the same
  tasks, in the same order, under the same stimulus ids;
- ``bring_back``: a submit's tasks that find every worker's slots taken go ``released ->
  waiting -> queued``, as ``_released_waiting``, ``_to_processing`` and ``_to_queued``;
- ``forgotten_block``: a release's results that nothing else wants go ``memory ->
  forgotten``, as ``_to_forgotten`` and ``_let_go``, their frees in the step's message.

These are the table's moves for a block of such tasks, their one place; any other task of
the block goes the per-key way, in its turn. ``in_blocks = False`` takes every task the
per-key way: the tests run the same events both ways and compare every effect.
"""
from __future__ import annotations

from collections.abc import Sequence
from sys import intern

from dist_protocol.messages import TaskFinished

from . import lineage
from .records import NONE, TaskState, WorkerInfo, left, same_pickled_type
from .feeding import FeedingMachine
from .task_messages import key_in_memory, small_value


class BlockMachine(FeedingMachine):
    __slots__ = ()

    def finished_block(self, worker: WorkerInfo, results: Sequence[TaskFinished],
                       sids: Sequence[str], at: int) -> int:
        """Take ``worker``'s results from ``results[at]`` on while they are of plain tasks
        (``sids`` their stimulus ids); the index of the first one not taken."""
        if not self.in_blocks or worker.long_running or worker.ahead:
            return at
        tasks = self.tasks
        address = worker.address
        end = len(results)
        first = True
        while at < end:
            msg = results[at]
            key = msg.key
            ts = tasks.get(key)
            if (ts is None or ts.processing_on != address or ts.state != "processing"
                    or not ts.wanted_by or ts.deps or ts.dependents or ts.who_has
                    or ts.counts is None or ts.spec is None or ts.spec.actor):
                return at
            if first:  # (only once a block is there: a graph's results are seldom plain)
                first = False
                processing = worker.processing
                has_what = worker.has_what
                holders = self.alone.of(address)  # (the block's tasks share this one set)
                log = self.transition_log.append
                stream = self.task_stream.append
                observe = self.task_durations.observe
                finished_by_prefix = self.finished_by_prefix
                small_values_for = self.small_values_for
                out = self.outbox.messages
                now = self.now
                # (a run's values are nearly always of one class: ``same_pickled_type``
                # asked once for it, not once a result)
                last_pickled: bytes | None = None
                type_pickled: bytes | None = None
            sid = sids[at]
            at += 1
            # processing -> memory (``_to_memory``, ``_set_state``), written out
            processing.pop(key, None)
            ts.processing_on = None
            if self.unrunnable:
                self.unrunnable.discard(key)
            ts.waiting_on = NONE
            nbytes, type_ = msg.nbytes, msg.type
            ts.nbytes, ts.type = nbytes, intern(type_)
            pickled = msg.type_pickled
            if pickled != last_pickled:
                last_pickled, type_pickled = pickled, same_pickled_type(pickled)
            ts.type_pickled = type_pickled
            log((key, "processing", "memory", sid, now))
            counts = ts.counts
            counts["processing"] -= 1
            counts["memory"] += 1
            ts.state = "memory"
            ts.who_has = holders
            has_what.add(key)
            worker.nbytes += nbytes
            finished_by_prefix[ts.prefix] += 1
            workers = [address]
            for client in ts.wanted_by:
                forms = small_values_for.get(client)
                if forms is None:
                    value = None
                elif forms[0] == "pickle" and msg.value is not None:
                    value = msg.value
                else:
                    value = small_value(msg, forms)
                message = key_in_memory(key, nbytes, type_, workers, value, type_pickled)
                if client[:1] == "<":  # one of the center's own holders (see ``send``)
                    self.outbox.send(client, message)
                else:
                    out.append((client, message))
            # the run (``record_run``), written out
            start, stop = msg.start, msg.stop
            if stop > start > 0:
                duration = stop - start
                avg = self.avg_duration
                self.avg_duration = duration if not avg else 0.9 * avg + 0.1 * duration
                stream((key, address, start, stop, nbytes, "OK", msg.transfers))
                self.task_stream_count += 1
                observe(ts.prefix, duration)
            self.fill(worker, sid)
        return at

    def bring_back(self, batch: list[TaskState], stimulus_id: str) -> None:
        """Bring the released tasks of ``batch`` that are wanted or needed back from their
        lineage, in order (a submit's tasks).

        Placing them only adds tasks to workers: once one without inputs, dependents or
        restrictions finds every slot taken, so do all such tasks after it in the batch, and
        they queue without each asking placement again (a slot freed by a task taken back ends
        that; a task with dependents may go beyond a worker's slots to its partner's, and
        asks placement as before). Those go ``released -> waiting -> queued`` here in one
        pass, as ``_released_waiting``, ``_to_processing`` and ``_to_queued`` move them.
        """
        self._in_batch = True
        log = None  # (the block's names, taken once one task goes in it: a chain's link,
        # submitted alone, never does, and paid for them at every submit)
        try:
            for ts in batch:
                if ts.state != "released" or not (ts.wanted_by or lineage.needed(self, ts)):
                    continue
                spec = ts.spec
                if (not self._roots_full or not self.in_blocks or self.recovering or ts.deps
                        or ts.dependents or spec is None or spec.resources or spec.workers):
                    self.transition(ts, "waiting", stimulus_id)
                    continue
                if log is None:
                    tasks_counts = self.task_counts
                    log = self.transition_log.append
                    queue = self.queue
                    now = self.now
                key = ts.key
                counts = ts.counts
                if counts is None:
                    counts = ts.counts = (tasks_counts.get(ts.prefix)
                                          or self._new_counts(ts.prefix))
                else:
                    counts["released"] -= 1
                counts["queued"] += 1  # (by way of waiting: one up, one down)
                log((key, "released", "waiting", stimulus_id, now))
                log((key, "waiting", "queued", stimulus_id, now))
                ts.waiting_on = NONE
                if self.unrunnable:
                    self.unrunnable.discard(key)
                ts.state = "queued"
                queue.push(key, spec.priority, ts.order)
        finally:
            self._in_batch = self._roots_full = False

    def forgotten_block(self, client: str, keys: Sequence[str], stimulus_id: str) -> None:
        """``client`` lets go of ``keys``: each one nothing else needs is forgotten. Results of
        plain tasks (no inputs, no dependents) that only this client wanted go ``memory ->
        forgotten`` here in one pass, as ``_to_forgotten`` and ``_let_go`` move them; any
        other key through the table."""
        wants = self.clients.get(client, set())
        tasks = self.tasks
        workers = self.workers
        open_frees = self.outbox.open_frees
        log = self.transition_log.append
        now = self.now
        in_blocks = self.in_blocks
        for key in keys:
            wants.discard(key)
            ts = tasks.get(key)
            if ts is None:
                continue
            wanted_by = ts.wanted_by
            if (not in_blocks or ts.state != "memory" or len(wanted_by) != 1
                    or client not in wanted_by or ts.deps or ts.dependents
                    or ts.counts is None):
                ts.wanted_by = left(wanted_by, client)
                self.transition(ts, "forgotten", stimulus_id)
                continue
            ts.wanted_by = NONE
            if self.waits.watched:
                self.waits.touch(key)
            for address in ts.who_has:
                worker = workers.get(address)
                if worker is not None:
                    worker.has_what.discard(key)
                    worker.nbytes -= ts.nbytes
                    # (``free``, written out for the usual case: the step's message is open)
                    open_free = open_frees.get(address)
                    if open_free is not None and key not in open_free[1]:
                        open_free[0].keys.append(key)
                    else:
                        self.outbox.free(address, key)
            ts.who_has = NONE
            if self.unrunnable:
                self.unrunnable.discard(key)
            if tasks.get(key) is ts:
                del tasks[key]
            ts.counts["memory"] -= 1
            log((key, "memory", "forgotten", stimulus_id, now))
            ts.state = "forgotten"
