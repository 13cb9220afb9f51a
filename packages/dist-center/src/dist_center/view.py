"""What the handlers outside the state machine (``recovery``, ``sharing``, ``retirement``,
``scattering``, ``retrying``, ``task_specs``, ``departures``) may see of the center and ask of it.

``CenterState`` is one. The handlers read its tables and change a task only by asking for a
transition (the table in ``transitions`` is the one place a task's state changes); they never
import ``state``, so that module is the only one that knows them all.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from dist_protocol.messages import Message, Release, TaskErred

from .held import Held
from .lineage import Recs
from .records import CenterView, Dataset, PrefixNames, Singletons, TaskState, WorkerInfo
from .waits import Waits
from .worker_feed import WorkerFeed


class Center(CenterView, Protocol):
    tasks: dict[str, TaskState]
    workers: dict[str, WorkerInfo]
    names: dict[str, str]
    clients: dict[str, set[str]]
    stealing: dict[str, str | None]
    cancelling_unstarted: dict[str, set[str]]
    datasets: dict[str, Dataset]
    small_values_for: dict[str, tuple[str, ...]]
    told_of_recomputing: set[str]
    cancels_dependents: set[str]
    worker_feed: WorkerFeed  # clients told of workers joining and leaving
    prefix_of: PrefixNames
    alone: Singletons
    now: float  # the clock, read once per step
    waits: Waits  # requests answered once what they wait for holds
    held: Held  # tasks whose runs silenced two workers
    # workers removed for silence -> the tasks that counted it as a death (see ``departures``)
    silent_deaths: dict[str, list[str]]
    # A center restarted on its state directory (see ``recovery``).
    durable: bool
    recovering: bool
    detached: set[str]
    awaiting_workers: set[str]

    @property
    def task_order(self) -> Iterator[int]: ...  # numbers tasks in the order they arrive

    def send(self, to: str, message: Message) -> None: ...

    def free(self, address: str, key: str) -> None: ...

    def transition(self, ts: TaskState, finish: str, stimulus_id: str,
                   argument: Any = None) -> None: ...

    def transitions(self, recs: Recs, stimulus_id: str) -> None: ...

    def bring_back(self, batch: list[TaskState], stimulus_id: str) -> None: ...

    def unlink_inputs(self, ts: TaskState) -> Recs: ...

    def add_replica(self, ts: TaskState, worker: WorkerInfo) -> None: ...

    def drop_replica(self, ts: TaskState, worker: WorkerInfo) -> None: ...

    def fill(self, worker: WorkerInfo, sid: str) -> None: ...

    def forget_capacity(self, address: str) -> None: ...

    def want(self, client: str, ts: TaskState) -> None: ...

    def release(self, client: str, msg: Release, sid: str) -> None: ...

    def report_existing(self, client: str, ts: TaskState) -> None: ...

    def retry_unrunnable(self, sid: str) -> None: ...

    def forget_client(self, client: str, sid: str) -> None: ...

    def failed(self, ts: TaskState, msg: TaskErred, sid: str) -> None: ...
