"""``task-stream``: the task runs the center recorded, for a client's ``get_task_stream()``,
as dask's records of them (no I/O)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dist_protocol.messages import TaskStream, TaskStreamReply, Transfer

# key, worker, start, stop, nbytes, status, the inputs fetched from peers for the run
Run = tuple[str, str, float, float, int, str, list[Transfer]]


def record(run: Run) -> dict[str, Any]:
    key, worker, start, stop, nbytes, status, transfers = run
    startstops = [{"action": "transfer", "start": t.start, "stop": t.stop, "source": t.source}
                  for t in transfers]
    startstops.append({"action": "compute", "start": start, "stop": stop})
    return {"key": key, "worker": worker, "status": status, "nbytes": nbytes,
            "startstops": startstops}


def answer(stream: Iterable[Run], recorded: int, msg: TaskStream) -> TaskStreamReply:
    """The runs ``msg`` asks for, of ``stream`` (the newest runs, ``recorded`` ever), oldest
    first."""
    runs = list(stream)
    if msg.after is not None:
        # Entries are numbered by their order of recording; older ones have left the deque.
        # A cursor past the count (from a center since started again) gets them all.
        first = len(runs) - (recorded - msg.after) if msg.after <= recorded else 0
        runs = runs[max(0, first):]
    if msg.start is not None:
        runs = [run for run in runs if run[2] >= msg.start]
    if msg.stop is not None:
        runs = [run for run in runs if run[3] <= msg.stop]
    if msg.count is not None:
        runs = runs[len(runs) - msg.count:] if msg.count else []
    return TaskStreamReply(id=msg.id, cursor=recorded, records=[record(run) for run in runs])


__all__ = ["answer", "record"]
