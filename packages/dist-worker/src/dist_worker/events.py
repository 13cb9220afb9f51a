"""What happens to a worker (facts), and what it must do about it (orders).

Every event carries a ``stimulus_id``: the worker's log names it beside each change it caused.
An event given none is named by the worker when it arrives."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dist_protocol.messages import ComputeTask, Message, TaskErred
from dist_protocol.serialize import Payload

# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComputeRequested:
    message: ComputeTask
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class FreeRequested:
    keys: list[str]
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class StealRequested:
    """The center would run these tasks elsewhere, if they have not started here."""

    keys: list[str]
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class ReplicasRequested:
    """The center wants copies of these keys here (from the listed holders)."""

    who_has: dict[str, list[str]]
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class DataFetched:
    """A peer answered a fetch: ``data`` holds what it had, ``missing`` what it did not."""

    worker: str
    data: dict[str, Any]
    nbytes: dict[str, int]
    missing: list[str]
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class FetchFailed:
    worker: str
    keys: list[str]
    reason: str
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionSucceeded:
    key: str
    value: Any
    nbytes: int
    type: str
    start: float
    stop: float
    payload: Payload | None = None  # the serialized value, kept when it is cheap to keep
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionFailed:
    key: str
    error: TaskErred
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class DataPut:
    """A client pushed (scattered) data here."""

    data: dict[str, Any]
    nbytes: dict[str, int]
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class MemoryPressureChanged:
    """Memory rose above the pause threshold (``paused``) or the target (``above_target``),
    or fell back below it."""

    paused: bool
    above_target: bool = False
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class RestartRequested:
    """The cluster is restarting: forget every task and value (a worker without a nanny)."""

    reason: str
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class StoryRequested:
    """The center asks what happened here to these keys (for a client's ``story``)."""

    request: int
    keys: list[str]
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class Seceded:
    """The running task ``key`` gave its thread slot back while it waits (``secede``)."""

    key: str
    stimulus_id: str = ""


@dataclass(frozen=True, slots=True)
class RejoinRequested:
    """The seceded task ``key`` wants a slot back to go on (``rejoin``)."""

    key: str
    stimulus_id: str = ""


Event = (ComputeRequested | FreeRequested | StealRequested | ReplicasRequested | DataFetched
         | FetchFailed | ExecutionSucceeded | ExecutionFailed | DataPut | MemoryPressureChanged
         | RestartRequested | StoryRequested | Seceded | RejoinRequested)


# -- instructions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Execute:
    key: str
    function: str | Payload
    args: Payload | None
    inputs: dict[str, Any]  # dependency values, by key
    actor: bool = False  # the result is an actor: its object stays here (see actors.py)


@dataclass(frozen=True, slots=True)
class Fetch:
    worker: str
    keys: list[str]


@dataclass(frozen=True, slots=True)
class SendToCenter:
    message: Message


@dataclass(frozen=True, slots=True)
class Resume:
    """The seceded task ``key`` has a slot again: its thread goes on."""

    key: str


Instruction = Execute | Fetch | SendToCenter | Resume
