"""Helpers for CenterState transcripts: events in, ``(recipient, message)`` pairs out.

Tests get them through fixtures (the suite runs with ``--import-mode=importlib``, so a test
module cannot import a sibling): ``center`` is a fresh ``CenterHarness`` whose every step
re-checks all invariants, and ``match`` builds a partial expectation for one message.
"""
from __future__ import annotations

from typing import Any

import pytest
from dist_center.events import (ClientConnected, ClientDisconnected, ClientSent, WorkerJoined,
                                WorkerLeft, WorkerSent)
from dist_center.state import CenterState, TaskState
from dist_protocol.messages import (Cancel, ComputeTask, Heartbeat, KeysAdded, Message,
                                    MissingData, RegisterWorker, Release, ScatterPlan, Submit,
                                    TaskErred, TaskFinished, TaskSpec)


class Like:
    """Equal to any message of ``cls`` whose named fields have the given values."""

    def __init__(self, cls: type, **fields: Any):
        self.cls = cls
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.cls) and all(
            getattr(other, name) == value for name, value in self.fields.items())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.fields.items())
        return f"Like({self.cls.__name__}, {shown})"


def match(cls: type, **fields: Any) -> Like:
    return Like(cls, **fields)


def spec(key: str, *deps: str, **fields: Any) -> TaskSpec:
    """A task as a client submits it; the function is an import path nothing runs here."""
    return TaskSpec(key=key, function="operator:add", deps=list(deps), **fields)


def compute(key: str, who_has: dict[str, list[str]] | None = None,
            nbytes: dict[str, int] | None = None, priority: int = 0) -> ComputeTask:
    """The compute-task the center sends for a task built by ``spec``."""
    return ComputeTask(key=key, function="operator:add", who_has=who_has or {},
                       nbytes=nbytes or {}, priority=priority)


class CenterHarness:
    """A CenterState driven one step at a time; ``validate()`` runs after every step."""

    spec = staticmethod(spec)
    compute = staticmethod(compute)

    def __init__(self) -> None:
        self.state = CenterState()

    def __call__(self, *events) -> list[tuple[str, Message]]:
        out = self.state.handle(*events)
        self.state.validate()
        return out

    # -- what clients do -------------------------------------------------------------------
    def connect(self, client: str = "alice", features: frozenset[str] = frozenset()):
        return self(ClientConnected(client, features))

    def disconnect(self, client: str = "alice"):
        return self(ClientDisconnected(client))

    def client_sent(self, message: Message, client: str = "alice"):
        return self(ClientSent(client, message))

    def submit(self, *tasks: TaskSpec | str, client: str = "alice",
               wanted: list[str] | None = None):
        specs = [spec(t) if isinstance(t, str) else t for t in tasks]
        return self.client_sent(Submit(tasks=specs, wanted=wanted), client)

    def release(self, *keys: str, client: str = "alice"):
        return self.client_sent(Release(keys=list(keys)), client)

    def cancel(self, *keys: str, client: str = "alice"):
        return self.client_sent(Cancel(keys=list(keys)), client)

    def scatter_plan(self, keys: dict[str, int], client: str = "alice", request: int = 1,
                     **fields: Any):
        return self.client_sent(ScatterPlan(id=request, keys=keys, **fields), client)

    # -- what workers do -------------------------------------------------------------------
    def join(self, address: str, nthreads: int = 1, name: str | None = None,
             keys: dict[str, int] | None = None, resources: dict[str, float] | None = None,
             features: frozenset[str] = frozenset(), memory_limit: int = 0):
        return self(WorkerJoined(RegisterWorker(address=address, nthreads=nthreads, name=name,
                                                keys=keys or {}, resources=resources or {},
                                                memory_limit=memory_limit),
                                 features=features))

    def leave(self, address: str, reason: str = "connection closed", graceful: bool = False):
        return self(WorkerLeft(address, reason, graceful))

    def worker_sent(self, address: str, message: Message):
        return self(WorkerSent(address, message))

    def finished(self, address: str, key: str, nbytes: int = 8, type: str = "int"):
        return self.worker_sent(address, TaskFinished(key=key, nbytes=nbytes, type=type))

    def erred(self, address: str, key: str, exception_type: str = "ZeroDivisionError",
              message: str = "division by zero"):
        return self.worker_sent(address, TaskErred(key=key, exception_type=exception_type,
                                                   message=message, traceback="tb"))

    def keys_added(self, address: str, keys: dict[str, int]):
        return self.worker_sent(address, KeysAdded(keys=keys))

    def missing(self, address: str, key: str, holder: str):
        return self.worker_sent(address, MissingData(key=key, worker=holder))

    def heartbeat(self, address: str, **metrics: Any):
        return self.worker_sent(address, Heartbeat(metrics=metrics))

    def finish(self, key: str, nbytes: int = 8):
        """Finish ``key`` on whichever worker runs it (for setting a scene)."""
        return self.finished(self.processing_on(key), key, nbytes)

    # -- what the center believes ----------------------------------------------------------
    def task(self, key: str) -> TaskState:
        return self.state.tasks[key]

    def state_of(self, key: str) -> str:
        ts = self.state.tasks.get(key)
        return "forgotten" if ts is None else ts.state

    def processing_on(self, key: str) -> str:
        address = self.state.tasks[key].processing_on
        assert address is not None, f"{key} is {self.state_of(key)}, not processing"
        return address

    def who_has(self, key: str) -> set[str]:
        return set(self.state.tasks[key].who_has)

    def processing(self, address: str) -> list[str]:
        return list(self.state.workers[address].processing)


@pytest.fixture
def center() -> CenterHarness:
    """A center with one connected client, ``alice``, and no workers yet."""
    harness = CenterHarness()
    harness.connect("alice")
    return harness


@pytest.fixture(name="match")
def match_fixture():
    return match
