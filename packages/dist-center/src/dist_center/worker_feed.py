"""Feature ``worker-events``: the clients that agreed it are told of every worker that
registers or leaves, so that they never ask ``cluster-info`` to know who runs which Python.
No I/O: each step returns the messages for the center's state machine to send."""
from __future__ import annotations

from typing import Any

from dist_protocol.messages import Message, WorkerAdded, WorkerList, WorkerRemoved

from .records import WorkerInfo

FEATURE = "worker-events"


def worker_entry(worker: WorkerInfo) -> dict[str, Any]:
    """What a client keeps of a worker: ``cluster-info-reply``'s fields that do not change
    while it is registered."""
    return {"address": worker.address, "name": worker.name, "nthreads": worker.nthreads,
            "memory_limit": worker.memory_limit, "resources": worker.resources,
            "environment": worker.environment}


class WorkerFeed:
    def __init__(self) -> None:
        self.watchers: set[str] = set()  # the clients whose connection agreed the feature

    def client_connected(self, client: str, features: frozenset[str],
                         workers: dict[str, WorkerInfo]) -> list[tuple[str, Message]]:
        if FEATURE not in features:
            return []
        self.watchers.add(client)
        return [(client, WorkerList(workers=[worker_entry(w) for w in workers.values()]))]

    def client_left(self, client: str) -> None:
        self.watchers.discard(client)

    def worker_joined(self, worker: WorkerInfo) -> list[tuple[str, Message]]:
        if not self.watchers:
            return []
        added = WorkerAdded(worker=worker_entry(worker))
        return [(client, added) for client in self.watchers]

    def worker_left(self, address: str) -> list[tuple[str, Message]]:
        removed = WorkerRemoved(address=address)
        return [(client, removed) for client in self.watchers]
