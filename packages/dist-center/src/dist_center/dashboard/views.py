"""What the dashboard's JSON API says, computed from a ``CenterState`` (no I/O, no clock).

Each function walks workers or function-name prefixes, never every task: the per-task work was
done as O(1) counter bumps in ``CenterState`` when the tasks moved.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

from ..sharing import is_holder
from ..state import STATES, CenterState, key_prefix
from ..worker_feed import cannot_spill

WAITING_STATES = ("waiting", "queued", "no-worker")
STREAM_COLUMNS = ("prefix", "key", "worker", "start", "stop")
STREAM_LIMIT = 2_000  # newest task-stream entries per answer: enough to draw the last seconds
PROGRESS_LIMIT = 100  # prefixes per answer: the active ones first


def connected_clients(state: CenterState) -> int:
    """Clients, not counting the center's own holders of keys (datasets, fire-and-forget)."""
    return sum(1 for client in state.clients if not is_holder(client))


def tasks_by_state(state: CenterState) -> dict[str, int]:
    """Tasks by the center's state; those sent ahead of their inputs (``processing`` at the
    center, waiting on their worker, not running) are counted apart as ``ahead``."""
    totals: dict[str, int] = dict.fromkeys(sorted(STATES), 0)
    for counts in state.task_counts.values():
        for name, count in counts.items():
            totals[name] += count
    ahead = sum(len(worker.ahead or ()) for worker in state.workers.values())
    totals["processing"] -= ahead
    totals["ahead"] = ahead
    return totals


def ahead_by_prefix(state: CenterState) -> dict[str, int]:
    """Tasks waiting ahead of their inputs on workers, by prefix: a few per worker thread."""
    counts: dict[str, int] = {}
    tasks = state.tasks
    for worker in state.workers.values():
        for key in worker.ahead or ():
            prefix = tasks[key].prefix
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def metric(metrics: dict, name: str, kind: type = int) -> Any:
    """A number from a worker's heartbeat; absent or malformed reads as 0, as JSON must."""
    value = metrics.get(name, 0)
    try:
        value = kind(value or 0)
    except (TypeError, ValueError, OverflowError):
        return kind(0)
    return value if kind is not float or math.isfinite(value) else 0.0


def environment_columns(environment: dict | None) -> dict[str, Any]:
    """What a worker runs, for the table: "CPython 3.11.7" and its package versions."""
    if not environment:
        return {"python": "", "packages": {}}
    names = {"cpython": "CPython", "pypy": "PyPy"}
    implementation = str(environment.get("implementation", ""))
    return {"python": f"{names.get(implementation, implementation)} "
                      f"{environment.get('python', '')}".strip(),
            "packages": dict(environment.get("packages") or {})}


def worker_rows(state: CenterState) -> list[dict[str, Any]]:
    rows = []
    for worker in state.workers.values():
        metrics = worker.metrics or {}
        rows.append({
            "address": worker.address,
            "name": worker.name,
            "status": worker.status,
            "nthreads": worker.nthreads,
            "memory": metric(metrics, "memory"),  # resident set size of the process
            "memory_limit": worker.memory_limit,
            # Of which results held in memory (managed) and the rest (unmanaged); results the
            # worker spilled to disk, by their size in memory and by the files' size.
            "managed": metric(metrics, "managed"),
            "unmanaged": metric(metrics, "unmanaged"),
            "spilled": metric(metrics, "spilled"),
            "spilled_disk": metric(metrics, "spilled_disk"),
            "spill_written": metric(metrics, "spill_written"),  # bytes, since the worker began
            "spill_read": metric(metrics, "spill_read"),
            "cpu": metric(metrics, "cpu", float),  # percent of one core
            "executing": metric(metrics, "executing"),
            "ready": metric(metrics, "ready"),
            # Assigned by the center and not yet finished, but for the tasks waiting there
            # ahead of their inputs (they hold no thread yet): those are ``ahead``.
            "processing": len(worker.processing) - len(worker.ahead or ()),
            "ahead": len(worker.ahead or ()),
            "keys": len(worker.has_what),
            "nbytes": worker.nbytes,
            "in_flight": metric(metrics, "in_flight"),
            "paused": bool(metrics.get("paused", False)),
            "cannot_spill": cannot_spill(worker),  # why, when its disk takes no values
            **environment_columns(worker.environment),
        })
    rows.sort(key=lambda row: (row["name"], row["address"]))
    return rows


def progress_rows(state: CenterState, limit: int = PROGRESS_LIMIT) -> list[dict[str, Any]]:
    """Per function name: tasks done (finished, even if released since), erred, running, waiting.

    ``total`` is their sum, so a bar reads ``(done + erred) / total``; tasks released before
    they ran (cancelled) leave the total. Tasks waiting on a worker ahead of their inputs are
    waiting, not running: ``ahead`` says how many of the waiting they are.
    """
    prefixes = set(state.task_counts) | set(state.finished_by_prefix) | set(state.erred_by_prefix)
    ahead_counts = ahead_by_prefix(state)
    rows = []
    for prefix in prefixes:
        counts = state.task_counts.get(prefix, {})
        done = state.finished_by_prefix.get(prefix, 0)
        erred = state.erred_by_prefix.get(prefix, 0)
        ahead = ahead_counts.get(prefix, 0)
        processing = counts.get("processing", 0) - ahead
        waiting = sum(counts.get(name, 0) for name in WAITING_STATES) + ahead
        rows.append({"prefix": prefix, "done": done, "erred": erred, "processing": processing,
                     "waiting": waiting, "ahead": ahead, "memory": counts.get("memory", 0),
                     "total": done + erred + processing + waiting})
    rows = [row for row in rows if row["total"] or row["memory"]]
    rows.sort(key=lambda row: (not (row["processing"] or row["waiting"]), row["prefix"]))
    return rows[:limit]


def stream_since(state: CenterState, cursor: int, limit: int = STREAM_LIMIT) -> dict[str, Any]:
    """Task-stream entries appended after ``cursor`` (at most the newest ``limit``).

    The cursor counts entries ever appended, so a client passes back the one it got. A cursor
    ahead of the center's (the center restarted) gets the newest entries, like a fresh client.
    """
    stream = state.task_stream
    total = state.task_stream_count
    since = cursor if 0 <= cursor <= total else 0
    wanted = total - since
    returned = min(wanted, limit, len(stream))
    newest = list(itertools.islice(reversed(stream), returned))
    newest.reverse()
    rows = [[key_prefix(key), key, worker, start, stop]
            for key, worker, start, stop, *_ in newest]
    # skipped: entries after the cursor left out, past the limit or already dropped by the deque
    return {"cursor": total, "columns": list(STREAM_COLUMNS), "rows": rows,
            "skipped": wanted - returned}


def status(state: CenterState, *, address: str, version: str, started: float,
           now: float) -> dict[str, Any]:
    workers = state.workers.values()
    memory = sum(metric(w.metrics or {}, "memory") for w in workers)
    return {
        "address": address,
        "version": version,
        "started": started,
        "now": now,
        "uptime": max(0.0, now - started),
        "workers": len(state.workers),
        "threads": sum(w.nthreads for w in workers),
        "memory": memory,
        "memory_limit": sum(w.memory_limit for w in workers),
        "bytes_held": sum(w.nbytes for w in workers),
        "clients": connected_clients(state),
        "tasks": tasks_by_state(state),
        "finished": sum(state.finished_by_prefix.values()),
        "erred": sum(state.erred_by_prefix.values()),
        "messages_handled": state.messages_handled,
        "task_stream_count": state.task_stream_count,
    }


def task_summary(state: CenterState) -> dict[str, Any]:
    """The part of ``/api/tasks`` that is the same for every client: cached by the server."""
    return {"states": tasks_by_state(state), "progress": progress_rows(state)}
