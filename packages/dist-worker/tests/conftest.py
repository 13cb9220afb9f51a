"""Helpers for WorkerState transcripts: events in, instructions out.

Tests get them through fixtures (the suite runs with ``--import-mode=importlib``, so a test
module cannot import a sibling): ``worker`` is a fresh ``WorkerHarness`` whose every step
re-checks the state's invariants.
"""
from __future__ import annotations

from typing import Any

import pytest
from dist_protocol.messages import ComputeTask, TaskErred
from dist_worker.events import (ComputeRequested, DataFetched, DataPut, Execute, ExecutionFailed,
                                ExecutionSucceeded, FetchFailed, FreeRequested,
                                MemoryPressureChanged, ReplicasRequested, StealRequested)
from dist_worker.state import WorkerState

FUNCTION = "operator:add"


def compute_task(key: str, who_has: dict[str, list[str]] | None = None,
                 priority: int = 0) -> ComputeTask:
    who_has = who_has or {}
    return ComputeTask(key=key, function=FUNCTION, who_has=who_has,
                       nbytes=dict.fromkeys(who_has, 8), priority=priority)


def execute(key: str, **inputs: Any) -> Execute:
    """The order to run a task built by ``compute_task`` with these input values."""
    return Execute(key=key, function=FUNCTION, args=None, inputs=inputs)


class WorkerHarness:
    """A WorkerState driven one step at a time; ``validate()`` runs after every step."""

    compute_task = staticmethod(compute_task)
    execute = staticmethod(execute)

    def __init__(self, nthreads: int = 2, address: str = "tcp://me:1") -> None:
        self.state = WorkerState(nthreads, address)

    def __call__(self, *events) -> list:
        out = self.state.handle(*events)
        self.state.validate()
        return out

    def compute(self, key: str, who_has: dict[str, list[str]] | None = None,
                priority: int = 0) -> list:
        return self(ComputeRequested(compute_task(key, who_has, priority)))

    def free(self, *keys: str) -> list:
        return self(FreeRequested(list(keys)))

    def steal(self, *keys: str) -> list:
        return self(StealRequested(list(keys)))

    def fetched(self, peer: str, data: dict[str, Any], missing: list[str] = ()) -> list:
        return self(DataFetched(peer, data, dict.fromkeys(data, 8), list(missing)))

    def fetch_failed(self, peer: str, *keys: str, reason: str = "connection refused") -> list:
        return self(FetchFailed(peer, list(keys), reason))

    def succeeded(self, key: str, value: Any = 1, nbytes: int = 8, type: str = "int") -> list:
        return self(ExecutionSucceeded(key, value, nbytes, type, 10.0, 10.5))

    def failed(self, key: str, exception_type: str = "ValueError",
               message: str = "bad input") -> list:
        return self(ExecutionFailed(key, TaskErred(key=key, exception_type=exception_type,
                                                   message=message)))

    def put(self, data: dict[str, Any]) -> list:
        return self(DataPut(data, dict.fromkeys(data, 8)))

    def replicas(self, who_has: dict[str, list[str]]) -> list:
        return self(ReplicasRequested(who_has))

    def pause(self, paused: bool = True) -> list:
        return self(MemoryPressureChanged(paused))

    def state_of(self, key: str) -> str:
        ts = self.state.tasks.get(key)
        return "forgotten" if ts is None else ts.state


@pytest.fixture
def worker() -> WorkerHarness:
    """A worker with two threads and nothing to do yet."""
    return WorkerHarness()


@pytest.fixture
def make_worker():
    return WorkerHarness
