"""The client's view of the workers kept from the center's events (feature ``worker-events``):
``worker-list`` when the connection opens, then ``worker-added`` and ``worker-removed`` as
workers come and go. No I/O: the executor hands each event here as it reads it.

Why: a client sending pickled code must know which worker runs which Python. Without the
feature it asks ``cluster-info`` whenever its view is older than a second, a round trip a
second for a client that submits steadily, and a worker of another Python is seen up to a
second late; with it the view is current as the events arrive, and costs nothing while no
worker comes or goes.
"""
from __future__ import annotations

from typing import Any

from dist_protocol.messages import Message, WorkerAdded, WorkerList, WorkerRemoved

from .environments import ClusterEnvironments, worker_entry_from

FEATURE = "worker-events"  # announced on request only (``features.ON_REQUEST``)
EVENTS = (WorkerList, WorkerAdded, WorkerRemoved)


def apply(msg: Message, seen: list[dict[str, Any]], envs: ClusterEnvironments,
          now: float) -> list[dict[str, Any]]:
    """The workers to show after ``msg`` (a new list: readers in other threads may hold the
    old one); ``envs`` is brought up to date with it."""
    if isinstance(msg, WorkerList):
        entries = [e for e in map(worker_entry_from, msg.workers) if e is not None]
        envs.listed(entries, now)
        return entries
    if isinstance(msg, WorkerAdded):
        entry = worker_entry_from(msg.worker)
        if entry is None:
            return seen
        envs.added(entry)
        return [*(w for w in seen if w["address"] != entry["address"]), entry]
    assert isinstance(msg, WorkerRemoved)
    envs.removed(msg.address)
    return [w for w in seen if w["address"] != msg.address]


def merge_reply(listed: list[dict[str, Any]], seen: list[dict[str, Any]],
                envs: ClusterEnvironments) -> list[dict[str, Any]]:
    """What to show after a ``cluster-info-reply`` (its loads, metrics, keys) while events keep
    the view: the events read since the reply was sent decide who is still there."""
    current = envs.workers.keys()
    fresh = [w for w in listed if w.get("address") in current]
    replied = {w["address"] for w in fresh}
    return fresh + [w for w in seen if w["address"] not in replied]
