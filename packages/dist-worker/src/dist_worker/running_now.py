"""What this worker runs now, for a client's ``worker-query`` (through the center): the keys
whose call runs (``Future.running()``), the stacks of their threads (dask's ``call_stack``),
the worker's newest log lines (``get_worker_logs``).

Nothing is recorded per task for this: the keys come from the worker's state, and a thread's
task is read from the runner's own frame on that thread when asked (its ``instruction``), so
the question costs only the worker that is asked, and only then.
"""
from __future__ import annotations

import sys
import traceback
from collections.abc import Collection
from types import FrameType
from typing import Any

from dist_protocol import recent_logs
from dist_protocol.messages import WorkerQuery, WorkerQueryReply

from .task_runner import POOL_LOOP_CODE


def answer(query: WorkerQuery, address: str, running: Collection[str]) -> WorkerQueryReply:
    """``running``: the keys the worker's state has executing (seceded ones included)."""
    wanted = set(running if query.keys is None else set(query.keys).intersection(running))
    result: Any
    if query.what == "executing":
        result = sorted(wanted)
    elif query.what == "call-stack":
        result = {key: lines for key, lines in stacks().items() if key in wanted}
    elif query.what == "logs":
        result = recent_logs.newest(query.n)
    else:
        result = None  # (the center answers center-logs itself)
    return WorkerQueryReply(id=query.id, answers={address: result})


def stacks() -> dict[str, list[str]]:
    """The stack of each task running on a pool thread, by key: the frames below the runner's
    loop, outermost first, each as ``traceback`` prints it."""
    found = {}
    for frame in sys._current_frames().values():
        below: list[FrameType] = []
        walk: FrameType | None = frame
        while walk is not None and walk.f_code is not POOL_LOOP_CODE:
            below.append(walk)
            walk = walk.f_back
        if walk is None:
            continue  # not a pool thread
        instruction = walk.f_locals.get("instruction")
        if instruction is None:
            continue  # between tasks
        summary = traceback.StackSummary.extract(
            ((f, f.f_lineno) for f in reversed(below)), lookup_lines=True)
        found[instruction.key] = summary.format()
    return found


__all__ = ["answer", "stacks"]
