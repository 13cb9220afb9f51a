"""Blocks: many tasks moved by one pass of the machine, where a map moves them by the thousand.

A worker's batch of messages carries dozens of ``task-finished`` in a map. Taken one at a time,
each went through the whole chain of calls made for any event (the step's dispatch, the
handler, the table, the state's handler, the log, the run's statistics, the worker's fill):
some twenty Python calls a task around the few dozen operations that are the work itself.
Here a run of results of plain tasks (no inputs, no dependents, wanted, finished where they
were sent) goes ``processing -> memory`` in one loop, with every effect that
``TaskMachine._to_memory`` and the per-key path have for such a task: the log entry under the
result's own stimulus id, the per-prefix counts, the holder's tables, the clients told (the
small value along for those that asked), the run in the task stream and the averages, and,
after each result, the fill that its own event made, so the worker is handed the same tasks,
in the same order, under the same stimulus ids.

This is the table's ``processing -> memory`` for a block of such tasks, its one place; a
result that is not plain ends the block, goes the per-key way, and the next block starts
after it. ``in_blocks = False`` takes every result the per-key way: the tests run the same
events both ways and compare every effect.
"""
from __future__ import annotations

from collections.abc import Sequence
from sys import intern

from dist_protocol.messages import KeyInMemory, TaskFinished

from .records import NONE, WorkerInfo, same_pickled_type
from .transitions import TaskMachine, small_value


class BlockMachine(TaskMachine):
    __slots__ = ()

    def finished_block(self, worker: WorkerInfo, results: Sequence[TaskFinished],
                       sids: Sequence[str], at: int) -> int:
        """Take ``worker``'s results from ``results[at]`` on while they are of plain tasks
        (``sids`` their stimulus ids); the index of the first one not taken."""
        if not self.in_blocks or worker.long_running or worker.ahead:
            return at
        tasks = self.tasks
        address = worker.address
        processing = worker.processing
        has_what = worker.has_what
        holders = self.alone.of(address)  # (every task of the block: this worker's one set)
        log = self.transition_log.append
        stream = self.task_stream.append
        observe = self.task_durations.observe
        finished_by_prefix = self.finished_by_prefix
        small_values_for = self.small_values_for
        out = self._out
        now = self.now
        end = len(results)
        while at < end:
            msg = results[at]
            key = msg.key
            ts = tasks.get(key)
            if (ts is None or ts.processing_on != address or ts.state != "processing"
                    or not ts.wanted_by or ts.deps or ts.dependents or ts.who_has
                    or ts.counts is None or ts.spec is None or ts.spec.actor):
                return at
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
            ts.type_pickled = type_pickled = same_pickled_type(msg.type_pickled)
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
                message = KeyInMemory(key, nbytes, type_, workers, value, type_pickled)
                if client[:1] == "<":  # one of the center's own holders (see ``send``)
                    self.send(client, message)
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
