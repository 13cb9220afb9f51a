"""Feature ``worker-events``: the clients that agreed it are told of every worker that
registers or leaves, so that they never ask ``cluster-info`` to know who runs which Python.
Feature ``worker-status``: those that agreed it are told when a worker cannot spill its
values to its disk (full, or unwritable), and when it can again. No I/O: each step returns
the messages for the center's state machine to send."""
from __future__ import annotations

from typing import Any

from dist_protocol.messages import Message, WorkerAdded, WorkerList, WorkerRemoved, WorkerStatus

from .records import WorkerInfo

FEATURE = "worker-events"
STATUS_FEATURE = "worker-status"


def worker_entry(worker: WorkerInfo) -> dict[str, Any]:
    """What a client keeps of a worker: ``cluster-info-reply``'s fields that do not change
    while it is registered."""
    return {"address": worker.address, "name": worker.name, "nthreads": worker.nthreads,
            "memory_limit": worker.memory_limit, "resources": worker.resources,
            "environment": worker.environment, "nanny": worker.nanny}


def cannot_spill(worker: WorkerInfo) -> str:
    """Why the worker cannot spill its values to its disk, as its last heartbeat said
    (``spill_error``); empty when it can."""
    error = (worker.metrics or {}).get("spill_error")
    return error if isinstance(error, str) else ""


class WorkerFeed:
    def __init__(self) -> None:
        self.watchers: set[str] = set()  # the clients whose connection agreed the feature
        self.status_watchers: set[str] = set()  # those that agreed ``worker-status``

    def client_connected(self, client: str, features: frozenset[str],
                         workers: dict[str, WorkerInfo]) -> list[tuple[str, Message]]:
        out: list[tuple[str, Message]] = []
        if FEATURE in features:
            self.watchers.add(client)
            out.append((client, WorkerList(workers=[worker_entry(w)
                                                    for w in workers.values()])))
        if STATUS_FEATURE in features:
            self.status_watchers.add(client)
            out.extend((client, WorkerStatus(address=w.address, cannot_spill=cannot_spill(w)))
                       for w in workers.values() if cannot_spill(w))
        return out

    def client_left(self, client: str) -> None:
        self.watchers.discard(client)
        self.status_watchers.discard(client)

    def worker_status(self, worker: WorkerInfo) -> list[tuple[str, Message]]:
        """The worker cannot spill any more, or can again."""
        if not self.status_watchers:
            return []
        status = WorkerStatus(address=worker.address, cannot_spill=cannot_spill(worker))
        return [(client, status) for client in self.status_watchers]

    def worker_joined(self, worker: WorkerInfo) -> list[tuple[str, Message]]:
        if not self.watchers:
            return []
        added = WorkerAdded(worker=worker_entry(worker))
        return [(client, added) for client in self.watchers]

    def worker_left(self, address: str) -> list[tuple[str, Message]]:
        removed = WorkerRemoved(address=address)
        return [(client, removed) for client in self.watchers]
