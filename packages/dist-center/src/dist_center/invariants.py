"""The invariants of CenterState, checked by tests after every step."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from . import placement
from .records import ACTIVE, STATES, CenterView, TaskStateName

NEEDED_STATES = ACTIVE | {"memory", "scattering"}


def check_table(table: Mapping[tuple[TaskStateName, TaskStateName], Any]) -> None:
    """The transition table and the states agree: every row names known states, every state
    is reached and left (``forgotten`` is only reached), and every state can release."""
    named: set[str] = {state for row in table for state in row}
    assert named <= {*STATES, "forgotten"}, named - {*STATES, "forgotten"}
    starts = {start for start, _ in table}
    finishes = {finish for _, finish in table}
    assert starts == set(STATES), set(STATES) ^ starts
    assert finishes >= set(STATES) - {"released"} | {"forgotten"}, finishes
    for start in STATES:
        if start != "released":
            assert (start, "released") in table, ("a task in it can never be let go", start)


def validate_state(state: CenterView, kept_for_parts: Collection[str] = ()) -> None:
    """``kept_for_parts``: tasks kept for a graph's later part (``graph_parts``)."""
    in_queue = set(state.queue)
    waiting_for_resources = {key for group in state.waiting_for_resources.values()
                             for key in group}
    for worker in state.workers.values():
        for name, amount in placement.free_resources(worker, state.tasks).items():
            assert amount >= 0, ("more of a resource in use than the worker has", worker, name)
    # a task to cancel if not started is asked back once, until its worker answers or leaves
    assert state.cancelling_unstarted.keys() <= state.stealing.keys(), \
        set(state.cancelling_unstarted) - set(state.stealing)
    for key, ts in state.tasks.items():
        if ts.state == "queued":
            assert key in in_queue or key in waiting_for_resources, ts
        assert ts.key == key
        assert ts.state in STATES, ts
        if ts.state == "processing":
            assert ts.processing_on is not None and ts.processing_on in state.workers, ts
            worker = state.workers[ts.processing_on]
            assert key in worker.processing, ts
            # Sent ahead (it waits there for inputs that worker is computing) or not at all.
            assert bool(ts.waiting_on) == (key in (worker.ahead or ())), ts
            for dep in ts.waiting_on:
                dts = state.tasks[dep]
                assert dts.state == "processing" and dts.processing_on == ts.processing_on, (
                    ts, dts)
            if ts.waiting_on:
                assert placement.ahead_line(state.tasks, ts, placement.AHEAD_PER_THREAD + 1) \
                    <= placement.AHEAD_PER_THREAD, ("too long a line waiting ahead", ts)
        else:
            assert ts.processing_on is None, ts
        if ts.state == "memory":
            assert ts.who_has, ts
        else:
            assert not ts.who_has, (ts, ts.who_has)
        for address in ts.who_has:
            assert key in state.workers[address].has_what, (ts, address)
        if ts.state == "waiting":
            assert ts.waiting_on, ts
            for dep in ts.waiting_on:
                assert state.tasks[dep].state != "memory", (ts, dep)
        for dep in ts.deps:
            if dep in state.tasks:
                assert key in state.tasks[dep].dependents, (ts, dep)
        for dep_key in ts.dependents:
            assert key in state.tasks[dep_key].deps, (ts, dep_key)
        for client in ts.wanted_by:
            assert key in state.clients.get(client, ()), (ts, client)
        if ts.state in ("no-worker",):
            assert key in state.unrunnable
        if ts.state in NEEDED_STATES:
            # Work and data nobody needs would hold a slot or memory until the center restarts.
            assert ts.wanted_by or any(state.tasks[k].state in ACTIVE
                                       for k in ts.dependents), ("not needed", ts)
        if ts.state == "released":
            assert ts.dependents or key in kept_for_parts, (
                "a released task is kept only as lineage or for a graph's later part", ts)
    for address, worker in state.workers.items():
        assert worker.address == address
        for key in worker.processing:
            ts = state.tasks[key]
            assert ts.state == "processing" and ts.processing_on == address, ts
        assert worker.long_running <= worker.processing.keys(), worker
        assert worker.brief <= worker.processing.keys(), worker
        assert not worker.brief & (worker.ahead or set()), worker
        if worker.ahead is not None:
            assert worker.ahead <= worker.processing.keys(), worker
            assert len(worker.ahead) <= placement.AHEAD_PER_THREAD * worker.nthreads, worker
        for key in worker.has_what:
            assert address in state.tasks[key].who_has
        assert worker.nbytes == sum(state.tasks[k].nbytes for k in worker.has_what), worker
    for client, keys in state.clients.items():
        for key in keys:
            assert key in state.tasks and client in state.tasks[key].wanted_by, (client, key)
    check_task_counts(state)


def check_task_counts(state: CenterView) -> None:
    """The dashboard's per-prefix counters agree with a recount of the tasks."""
    recount: dict[str, dict[str, int]] = {}
    for ts in state.tasks.values():
        if ts.counts is not None:
            assert ts.counts is state.task_counts[ts.prefix], ts
            by_state = recount.setdefault(ts.prefix, {})
            by_state[ts.state] = by_state.get(ts.state, 0) + 1
    for prefix, counts in state.task_counts.items():
        nonzero = {name: count for name, count in counts.items() if count}
        assert nonzero == recount.get(prefix, {}), (prefix, nonzero, recount.get(prefix))
