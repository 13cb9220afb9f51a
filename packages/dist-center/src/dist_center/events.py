"""What happens to the center, as facts. ``CenterState.handle`` takes these."""
from __future__ import annotations

from dataclasses import dataclass

from dist_protocol.messages import Environment, Message, RegisterWorker


@dataclass(frozen=True, slots=True)
class ClientConnected:
    client: str
    features: frozenset[str] = frozenset()  # the protocol features its connection agreed


@dataclass(frozen=True, slots=True)
class ClientDisconnected:
    client: str


@dataclass(frozen=True, slots=True)
class ClientSent:
    client: str
    message: Message


@dataclass(frozen=True, slots=True)
class WorkerJoined:
    registration: RegisterWorker
    environment: Environment | None = None  # what the worker said it runs, in its hello


@dataclass(frozen=True, slots=True)
class WorkerSent:
    worker: str
    message: Message


@dataclass(frozen=True, slots=True)
class WorkerLeft:
    """A worker is gone. ``graceful``: it said goodbye, so its running tasks are not suspects."""

    worker: str
    reason: str
    graceful: bool = False


Event = ClientConnected | ClientDisconnected | ClientSent | WorkerJoined | WorkerSent | WorkerLeft
