"""The client's view of the workers kept from the center's events (feature ``worker-events``):
``worker-list`` when the connection opens, then ``worker-added`` and ``worker-removed`` as
workers come and go. No I/O: the executor hands each event here as it reads it.

Why: a client sending pickled code must know which worker runs which Python. Without the
feature it asks ``cluster-info`` whenever its view is older than a second, a round trip a
second for a client that submits steadily, and a worker of another Python is seen up to a
second late; with it the view is current as the events arrive, and costs nothing while no
worker comes or goes.

With the feature ``worker-status`` the center says too when a worker cannot spill its values
to its disk (full, or unwritable): it then pauses whenever its memory reaches the spill
threshold, and the tasks kept to it would wait in silence until the user's own timeout. That
is logged as a warning naming the worker and the reason, once, and at info level when it can
again.
"""
from __future__ import annotations

import logging
from typing import Any

from dist_protocol.messages import Message, WorkerAdded, WorkerList, WorkerRemoved, WorkerStatus

from .environments import ClusterEnvironments, worker_entry_from

FEATURE = "worker-events"  # announced on request only (``features.ON_REQUEST``)
STATUS_FEATURE = "worker-status"  # likewise
REQUESTED = (FEATURE, STATUS_FEATURE)
EVENTS = (WorkerList, WorkerAdded, WorkerRemoved, WorkerStatus)

log = logging.getLogger("dist_client")


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
    if isinstance(msg, WorkerStatus):
        _log_status(msg, seen)
        # (kept in the worker's entry, for ``disk_stalls`` to say when a wait times out)
        return [{**w, "cannot_spill": msg.cannot_spill} if w["address"] == msg.address else w
                for w in seen]
    assert isinstance(msg, WorkerRemoved)
    envs.removed(msg.address)
    return [w for w in seen if w["address"] != msg.address]


def _log_status(msg: WorkerStatus, seen: list[dict[str, Any]]) -> None:
    name = next((w["name"] for w in seen if w["address"] == msg.address), msg.address)
    who = msg.address if name == msg.address else f"{name} ({msg.address})"
    if not msg.cannot_spill:
        log.info("worker %s spills to disk again", who)
        return
    log.warning("worker %s cannot spill to disk (%s): it pauses whenever its memory reaches "
                "the spill threshold, and the tasks kept to it wait until it can (free space "
                "in its --local-directory); tasks that can run elsewhere go to other workers",
                who, msg.cannot_spill)


def disk_stalls(seen: list[dict[str, Any]]) -> str:
    """What to add to a wait's ``TimeoutError`` while workers cannot spill (they pause, and
    what is kept to them waits): empty when none is known to."""
    stalled = [(w.get("name") or w["address"], w["address"], w["cannot_spill"]) for w in seen
               if isinstance(w.get("cannot_spill"), str) and w["cannot_spill"]]
    if not stalled:
        return ""
    named = "; ".join(f"{name if name == address else f'{name} ({address})'}: {why}"
                      for name, address, why in stalled)
    return (f" (meanwhile {len(stalled)} of {len(seen)} workers cannot spill to disk, and "
            f"pause whenever their memory reaches the spill threshold: {named}; free space "
            f"in their --local-directory, or give them more memory)")


def merge_reply(listed: list[dict[str, Any]], seen: list[dict[str, Any]],
                envs: ClusterEnvironments) -> list[dict[str, Any]]:
    """What to show after a ``cluster-info-reply`` (its loads, metrics, keys) while events keep
    the view: the events read since the reply was sent decide who is still there."""
    current = envs.workers.keys()
    fresh = [w for w in listed if w.get("address") in current]
    replied = {w["address"] for w in fresh}
    return fresh + [w for w in seen if w["address"] not in replied]
