"""What happens to the center, as facts. ``CenterState.handle`` takes these.

Every event carries a ``stimulus_id``: each state change it causes is logged under that id, so a
key's story says why it moved. The server names events by what happened (``task-finished-12``);
an event given none is named by the center when it arrives.
"""
from __future__ import annotations

from dist_protocol.messages import Environment, Message, RegisterWorker, TaskErred
from dist_protocol.records import frozen_record

from .generated_events import METHODS


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ClientConnected:
    client: str
    features: frozenset[str] = frozenset()  # the protocol features its connection agreed
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ClientDisconnected:
    client: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ClientSent:
    client: str
    message: Message
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class WorkerJoined:
    registration: RegisterWorker
    environment: Environment | None = None  # what the worker said it runs, in its hello
    features: frozenset[str] = frozenset()  # the protocol features its connection agreed
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class WorkerSent:
    worker: str
    message: Message
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class WorkerLeft:
    """A worker is gone. ``graceful``: it said goodbye, so its running tasks are not suspects.
    ``silent``: removed for not answering, its connection still open -- it may be busy (a
    task holding the GIL) rather than dead, and then it registers again. Should that connection
    close instead, a second ``WorkerLeft`` (not silent) says so: the worker did die."""

    worker: str
    reason: str
    graceful: bool = False
    silent: bool = False
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class RestartTimedOut:
    """A client's ``restart`` waited ``timeout`` seconds: answer with the workers back so far."""

    client: str
    request: int  # the restart's id
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class CoordinationTimedOut:
    """A client's waiting ``coordinate`` request reached its ``timeout``."""

    client: str
    request: int  # the request's id
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class WaitTimedOut:
    """A client's waiting request (``cluster-info``, ``scatter-plan``, ``replicate``: see
    ``waits``) reached its ``timeout``."""

    client: str
    op: str
    request: int  # the request's id
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class TimeElapsed:
    """A periodic tick of the server's clock: housekeeping that is due is done now."""

    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class Recovering:
    """The center starts on its state directory (replayed up to here). Clients it knew are
    detached until they resume their sessions; no task is sent to a worker until the workers
    registered before (``workers``) are back, or ``RecoveryTimedOut``, so that what they
    hold is found instead of computed again."""

    workers: frozenset[str] = frozenset()
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class RecoveryTimedOut:
    """Workers registered before the restart did not all come back in time: run the tasks."""

    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class DetachedTimedOut:
    """Clients known from before a restart that did not resume in time are gone."""

    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class TaskFailed:
    """A task's run failed (as a worker's ``task-erred`` said), replayed from the journal:
    a retry is used, or the task errs."""

    key: str
    error: TaskErred
    stimulus_id: str = ""


Event = (ClientConnected | ClientDisconnected | ClientSent | WorkerJoined | WorkerSent
         | WorkerLeft | RestartTimedOut | CoordinationTimedOut | WaitTimedOut | TimeElapsed
         | Recovering | RecoveryTimedOut | DetachedTimedOut | TaskFailed)
