"""Blocks: a worker's run of results taken in one pass leaves the center exactly as the
per-key path does (``in_blocks = False``): the same messages in the same order, the same log
under the same stimulus ids, the same counts, holders, queue and statistics, step by step."""
from __future__ import annotations

from dist_center.events import ClientConnected, ClientSent, WorkerJoined, WorkerSent
from dist_center.state import CenterState
from dist_protocol.messages import (FireAndForget, Heartbeat, RegisterWorker, Release, Submit,
                                    TaskErred, TaskFinished, TaskSpec)


def spec(key: str, *deps: str) -> TaskSpec:
    return TaskSpec(key=key, function="operator:add", deps=list(deps))


def snapshot(state: CenterState) -> dict:
    """Everything a step may change that a block writes out."""
    return {
        "tasks": {key: (ts.state, ts.processing_on, sorted(ts.who_has), ts.nbytes, ts.type,
                        ts.type_pickled, sorted(ts.wanted_by), sorted(ts.waiting_on))
                  for key, ts in state.tasks.items()},
        "workers": {address: (list(w.processing), sorted(w.has_what), w.nbytes)
                    for address, w in state.workers.items()},
        "log": list(state.transition_log),
        "counts": state.task_counts,
        "finished": dict(state.finished_by_prefix),
        "stream": list(state.task_stream),
        "stream_count": state.task_stream_count,
        "avg": state.avg_duration,
        "queue": list(state.queue),
        "may_steal": state._may_steal,
        "durations": state.task_durations.by_prefix,
    }


class Both:
    """The same events through a center in blocks and one taking each result alone."""

    def __init__(self) -> None:
        self.blocks = CenterState(clock=lambda: 100.0)
        self.alone = CenterState(clock=lambda: 100.0)
        self.alone.in_blocks = False
        self.blocked_results = 0

    def __call__(self, *events):
        out = self.blocks.handle(*events)
        assert out == self.alone.handle(*events)
        self.blocks.validate()
        self.alone.validate()
        assert snapshot(self.blocks) == snapshot(self.alone)
        return out


def finished(key: str, at: float, took: float, **fields) -> TaskFinished:
    return TaskFinished(key=key, nbytes=len(key), type="int", start=at, stop=at + took,
                        **fields)


def test_runs_of_results_leave_the_state_the_per_key_path_leaves():
    both = Both()
    both(ClientConnected("alice"), ClientConnected("bob"))
    both(WorkerJoined(RegisterWorker(address="w1", nthreads=2)),
         WorkerJoined(RegisterWorker(address="w2", nthreads=1)))
    # a map (queued beyond the workers' slots), a small graph, a task two clients want, and
    # one fired and forgotten: plain results and others, mixed in the workers' runs
    both(ClientSent("alice", Submit(tasks=[spec(f"inc-{i}") for i in range(80)],
                                    small_values=True)))
    both(ClientSent("alice", Submit(tasks=[spec("a"), spec("b", "a")], wanted=["b"])))
    both(ClientSent("bob", Submit(tasks=[spec("inc-3"), spec("shared")])))
    both(ClientSent("alice", Submit(tasks=[spec("shared")])))
    both(ClientSent("bob", Submit(tasks=[spec("fired")])))
    both(ClientSent("bob", FireAndForget(keys=["fired"])))
    at = 1.0
    for turn in range(60):
        events = []
        for address in ("w1", "w2"):
            running = list(both.blocks.workers[address].processing)
            for n, key in enumerate(running[: 1 + turn % 4]):
                at += 0.001
                # durations that move the average, and so the workers' capacity, in a run
                took = 0.0005 if (turn + n) % 3 else 0.2
                if key == "inc-17":
                    events.append(WorkerSent(address, TaskErred(
                        key=key, exception_type="ZeroDivisionError", message="no",
                        traceback="tb")))
                    continue
                events.append(WorkerSent(address, finished(key, at, took)))
                if n == 1:  # a result told twice, and one of a task nobody knows
                    events.append(WorkerSent(address, finished(key, at, took)))
                    events.append(WorkerSent(address, finished("unknown", at, took)))
            if turn % 5 == 0:
                events.append(WorkerSent(address, Heartbeat(metrics={"memory": 1})))
        if not events:
            break
        both(*events)
        if turn == 10:  # results, tasks still queued and running, a key not known
            both(ClientSent("alice", Release(keys=[f"inc-{i}" for i in (0, 1, 2, 70, 71)]
                                             + ["unknown"])))
    assert {key: ts.state for key, ts in both.blocks.tasks.items()
            if ts.state != "memory"} == {"inc-17": "erred", "a": "released"}
    assert both.blocks.finished_by_prefix["inc"] == 77
    # let go of: plain results, one another client wants too, one with an input, one erred
    both(ClientSent("alice", Release(keys=[f"inc-{i}" for i in range(80)]
                                     + ["b", "shared", "nothing"])))
    both(ClientSent("bob", Release(keys=["inc-3", "shared"])))
    # submitted again: a map that queues behind full workers, a graph from its lineage
    both(ClientSent("alice", Submit(tasks=[spec(f"inc-{i}") for i in range(40)]
                                    + [spec("a"), spec("b", "a")])))
    assert [ts.state for ts in both.blocks.tasks.values()].count("queued") > 30


class Counting(CenterState):
    __slots__ = ("taken",)

    def finished_block(self, worker, results, sids, at):
        end = super().finished_block(worker, results, sids, at)
        self.taken.append(end - at)
        return end


def test_a_run_of_results_is_taken_in_blocks():
    """(The comparison above would pass with blocks never taken: they are.)"""
    state = Counting(clock=lambda: 100.0)
    state.taken = []
    state.handle(ClientConnected("alice"), WorkerJoined(RegisterWorker(address="w1",
                                                                       nthreads=4)))
    state.handle(ClientSent("alice", Submit(tasks=[spec(f"inc-{i}") for i in range(8)])))
    running = list(state.workers["w1"].processing)
    state.handle(*[WorkerSent("w1", finished(key, 1.0, 0.001)) for key in running])
    state.validate()
    assert state.taken == [len(running)]
    assert [key for key, ts in state.tasks.items() if ts.state == "memory"] == running
