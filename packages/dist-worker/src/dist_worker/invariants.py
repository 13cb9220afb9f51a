"""What must hold of a worker's state between events: ``WorkerState.validate`` asserts it,
and the tests call that after every step, so that a transition that leaves a task, a slot or
an input half-moved fails where it happens, not later."""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol

from .fetches import REPLICA, Fetches
from .tasklog import RUNNING


class Task(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def waiting_on(self) -> set[str]: ...


class State(Protocol):
    """What the check reads of a worker's state (``state.WorkerState``)."""

    @property
    def nthreads(self) -> int: ...
    @property
    def tasks(self) -> Mapping[str, Task]: ...
    @property
    def executing(self) -> set[str]: ...
    @property
    def lent(self) -> set[str]: ...
    @property
    def seceded(self) -> set[str]: ...
    @property
    def rejoining(self) -> deque[str]: ...
    @property
    def forgotten_slots(self) -> int: ...
    @property
    def loading(self) -> Mapping[str, set[str]]: ...
    @property
    def data(self) -> MutableMapping[str, Any]: ...
    @property
    def nbytes(self) -> Mapping[str, int]: ...
    @property
    def fetches(self) -> Fetches: ...


def check(state: State) -> None:
    for key, ts in state.tasks.items():
        assert ts.state in ("waiting", "ready", "reading", *RUNNING), ts
        if ts.state in ("executing", "reading"):
            assert key in state.executing
        if ts.state == "long-running":
            assert key in state.seceded
        if ts.state == "reading":
            assert ts.waiting_on, ts
            for dep in ts.waiting_on:
                assert key in state.loading.get(dep, ()), (ts, dep)
            continue
        for dep in ts.waiting_on:
            assert dep not in state.data, (ts, dep)
            assert key in state.fetches.waiters.get(dep, ()), (ts, dep)
        if ts.state == "waiting":
            assert ts.waiting_on, ts
    for key in state.executing:
        running = state.tasks.get(key)  # (None: since a reset)
        assert running is None or running.state in ("executing", "reading"), running
    assert len(state.executing - state.lent) + state.forgotten_slots <= state.nthreads
    assert state.forgotten_slots >= 0
    assert state.lent <= state.executing
    assert not state.executing & state.seceded
    assert set(state.rejoining) <= state.seceded
    assert set(state.data) == set(state.nbytes)
    state.fetches.validate(state.data)
    for key, waiting in state.fetches.waiters.items():
        for task_key in waiting:
            if task_key != REPLICA:
                assert key in state.tasks[task_key].waiting_on, (key, task_key)
