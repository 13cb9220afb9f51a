"""What happens to a worker (facts), and what it must do about it (orders).

Every event carries a ``stimulus_id``: the worker's log names it beside each change it caused.
An event given none is named by the worker when it arrives."""
from __future__ import annotations

from typing import Any

from dist_protocol.messages import ComputeTask, Message, TaskErred
from dist_protocol.records import frozen_record
from dist_protocol.serialize import Payload

from .generated_events import METHODS

SMALL_VALUE_BYTES = 1024  # values this small go along with task-finished

# -- events ----------------------------------------------------------------------------------


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ComputeRequested:
    message: ComputeTask
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ComputesRequested:
    """``compute-task`` for each of ``messages``, in a row as they came (a map's column
    block): each handled as its own ``ComputeRequested`` would be, under one stimulus."""

    messages: list[ComputeTask]
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class FreeRequested:
    keys: list[str]
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class StealRequested:
    """The center would run these tasks elsewhere, if they have not started here."""

    keys: list[str]
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ReplicasRequested:
    """The center wants copies of these keys here (from the listed holders)."""

    who_has: dict[str, list[str]]
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class DataFetched:
    """A peer answered a fetch: ``data`` holds what it had, ``missing`` what it did not."""

    worker: str
    data: dict[str, Any]
    nbytes: dict[str, int]
    missing: list[str]
    stimulus_id: str = ""
    start: float = 0.0  # when the fetch was asked and answered, for the task stream
    stop: float = 0.0


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class InputsUnloadable:
    """A peer sent these keys, and they cannot be unpickled here (``errors`` says why, per
    key): the same bytes would fail from any holder, so the tasks that need them err."""

    worker: str
    errors: dict[str, tuple[str, str]]  # key: (exception type, message)
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class FetchFailed:
    worker: str
    keys: list[str]
    reason: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ExecutionSucceeded:
    key: str
    value: Any
    nbytes: int  # the payload's, when it has one; else the value's estimated size
    type: str
    start: float
    stop: float
    payload: Payload | None = None  # the serialized value, kept when it is cheap to keep
    stimulus_id: str = ""
    msgpack: Payload | None = None  # a small value as msgpack too, for clients of any language
    type_pickled: bytes | None = None  # the value's class, for Python clients (result_types.py)
    # The value's estimated memory, weighed on the task's thread: a value of a class the
    # worker does not know is weighed by its own ``__sizeof__`` (or its items' pickles), user
    # code that must not run on the event loop. None: the store weighs it (plain data).
    weight: int | None = None


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ExecutionFailed:
    key: str
    error: TaskErred
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ForgottenRunEnded:
    """A run of ``key`` that a restart forgot has ended (its outcome dropped), or was
    dropped before a thread took it. ``held_slot``: it still held one of the threads' slots
    (it had not seceded). Runs are told apart so: a key forgotten by a restart may run again
    at once, while its forgotten run still goes on."""

    key: str
    held_slot: bool
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ForgottenRunSeceded:
    """A run of ``key`` that a restart forgot gave its thread slot back (``secede``)."""

    key: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class InlineRunEnded:
    """Tasks run one after the other on the worker's event loop have ended: ``outcomes``,
    in the order they ran, each handled as it would be alone (the same states, log entries
    and messages), under this one stimulus. ``declined``: tasks of a ``RunInline`` given
    back unrun (their function no longer runs on the loop): ready again. ``function``,
    ``more``: the worker would run up to ``more`` further ready tasks of ``function`` the
    same way (a map's next tasks), beyond its threads' slots, which runs on the loop do not
    take."""

    outcomes: list[ExecutionSucceeded | ExecutionFailed]
    declined: list[str]
    function: str | Payload | None = None
    more: int = 0
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class DataPut:
    """A client pushed (scattered) data here."""

    data: dict[str, Any]
    nbytes: dict[str, int]
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class MemoryPressureChanged:
    """Memory rose above the pause threshold (``paused``) or the target (``above_target``),
    or fell back below it."""

    paused: bool
    above_target: bool = False
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class RestartRequested:
    """The cluster is restarting: forget every task and value (a worker without a nanny)."""

    reason: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class StoryRequested:
    """The center asks what happened here to these keys (for a client's ``story``)."""

    request: int
    keys: list[str]
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class Seceded:
    """The running task ``key`` gave its thread slot back while it waits (``secede``)."""

    key: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class SpilledValueLost:
    """The spill file of ``key`` could not be read back (``reason``): the value is gone here."""

    key: str
    reason: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class SpilledValueRead:
    """The spill file of ``key`` was read on a thread (``ReadSpilled``): ``value``, unpickled
    from ``nbytes_read`` bytes of it (``read``); or why not: the file could not be read
    (``lost``, its reason: the value is gone here), the value does not unpickle
    (``unloadable``: exception type, message), or the key was no longer on disk only when
    its turn came (none of these: back in memory, or freed)."""

    key: str
    value: Any = None
    nbytes_read: int = 0
    read: bool = False
    lost: str = ""
    unloadable: tuple[str, str] | None = None
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class RejoinRequested:
    """The seceded task ``key`` wants a slot back to go on (``rejoin``)."""

    key: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class SignalReceived:
    """The worker process got ``signal`` (a name, ``"SIGALRM"``), whose default action would
    have ended it, and survived it (``task_signals``): a task's alarm, timer or ``os.kill``."""

    signal: str
    stimulus_id: str = ""


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class Terminated:
    """The worker process got, ``at`` (the state's clock), a SIGTERM its nanny did not send
    (a task's ``os.kill``, or one sent to this process alone), and exits as if killed: the
    tasks that may have sent it -- those running then, or if none the last to end if it ended
    ``within`` seconds before -- are named to the center, which counts the death against them
    (protocol feature task-terminated)."""

    at: float
    within: float
    stimulus_id: str = ""


Event = (ComputeRequested | ComputesRequested | FreeRequested | StealRequested
         | ReplicasRequested | DataFetched
         | InputsUnloadable | FetchFailed | ExecutionSucceeded | ExecutionFailed
         | ForgottenRunEnded | ForgottenRunSeceded | InlineRunEnded | DataPut
         | MemoryPressureChanged | RestartRequested | StoryRequested | Seceded | RejoinRequested
         | SpilledValueLost | SpilledValueRead | SignalReceived | Terminated)


# -- instructions ----------------------------------------------------------------------------


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class Execute:
    key: str
    function: str | Payload
    args: Payload | None
    inputs: dict[str, Any]  # dependency values, by key
    actor: bool = False  # the result is an actor: its object stays here (see actors.py)
    value_msgpack: bool = False  # a small result goes as msgpack too (compute-task asked)


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class RunInline:
    """Run these tasks (ready, without inputs, of one function) on the event loop, one
    after the other, in this order; any not run there is given back
    (``InlineRunEnded.declined``), never handed to a thread: they hold no slot."""

    executes: list[Execute]


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class Fetch:
    worker: str
    keys: list[str]


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ReadSpilled:
    """Read these keys' spill files on a thread, for tasks that wait for them with a slot
    (``SpilledValueRead`` for each, as it ends): read on the event loop, a value of
    hundreds of megabytes held heartbeats, peers and clients for seconds."""

    keys: list[str]


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class SendToCenter:
    message: Message


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class Resume:
    """The seceded task ``key`` has a slot again: its thread goes on."""

    key: str


@frozen_record(METHODS)  # dataclass(frozen=True, slots=True), generated
class ReplaceThread:
    """The task ``key`` was freed while it ran (the client cancelled it): its thread runs on
    outside the pool's count, and the pool starts another in its place. The center counts
    the slot free at once; a task that never ends would otherwise hold it, and every task
    queued behind it, for good."""

    key: str


# The stimulus id an event without one is given: this prefix and a count (``WorkerState``).
STIMULUS_PREFIX: dict[type, str] = {
    ComputeRequested: "compute-task-", ComputesRequested: "compute-task-",
    FreeRequested: "free-keys-",
    StealRequested: "steal-request-", ReplicasRequested: "acquire-replicas-",
    DataFetched: "data-fetched-", FetchFailed: "fetch-failed-",
    InputsUnloadable: "inputs-unloadable-",
    ExecutionSucceeded: "task-succeeded-", ExecutionFailed: "task-failed-",
    ForgottenRunEnded: "forgotten-run-ended-", ForgottenRunSeceded: "forgotten-run-seceded-",
    InlineRunEnded: "inline-run-",
    DataPut: "put-data-", MemoryPressureChanged: "memory-pressure-",
    RestartRequested: "restart-", StoryRequested: "story-",
    Seceded: "secede-", RejoinRequested: "rejoin-", SpilledValueLost: "spilled-value-lost-",
    SpilledValueRead: "spilled-value-read-",
    SignalReceived: "signal-", Terminated: "terminated-",
}

Instruction = (Execute | RunInline | Fetch | ReadSpilled | SendToCenter | Resume
               | ReplaceThread)
