"""Restarts for memory (protocol feature ``memory-restart``).

A value that, with the worker process's own memory, does not fit under the *terminate*
threshold restarts the worker whenever it is held: as it is made, and as a task reads it back.
Lost with the process, it is made again for the client that still wants it, and the worker
restarts again, without end: a death counts against the tasks running when the worker died,
and the value's task was not running. So the worker names the values it blames before it
exits, and the restart counts as a death of their tasks too: after the allowed deaths the
value's task errs as ``KilledWorker``, saying why, and the loop stops.
"""
from __future__ import annotations

from collections.abc import Collection

from dist_protocol.key_names import shown_key
from dist_protocol.messages import TaskErred

from .records import TaskState, WorkerInfo


def blamed_and_lost(blamed: Collection[str], lost: list[TaskState]) -> list[TaskState]:
    """Of the values lost with a worker that restarted for memory (or stopped for a SIGTERM
    a task may have sent, feature task-terminated), those it blamed: tasks with lineage,
    which would otherwise be computed again (scattered data is lost for good anyway)."""
    return [ts for ts in lost if ts.key in blamed and ts.spec is not None]


def killed_for_memory(ts: TaskState, nbytes: int, worker: WorkerInfo) -> TaskErred:
    """The error of a task whose value restarted its workers as many times as a task may
    die with its workers."""
    limit = f" ({megabytes(worker.memory_limit)})" if worker.memory_limit else ""
    process = worker.memory_at_restart
    if process > 2 * nbytes:
        # The worker blamed the largest value it held, but most of the process was not
        # values: libraries, the allocator's keep, what tasks leave behind. "Make the value
        # smaller" would send the user after the wrong thing.
        return TaskErred(
            key=ts.key, exception_type="KilledWorker",
            message=f"task {shown_key(ts.key)} was lost with its workers {len(ts.died_on)} "
                    f"times: {', '.join(ts.died_on)}; the worker was restarted for memory "
                    f"each time its value ({megabytes(nbytes)}) was held, but the value was "
                    f"the lesser part: the worker process held {megabytes(process)} at the "
                    f"last restart, against its memory limit{limit}, most of it the worker's "
                    "own (libraries, the allocator, what tasks left); giving up (give the "
                    "workers a larger memory limit)")
    return TaskErred(
        key=ts.key, exception_type="KilledWorker",
        message=f"task {shown_key(ts.key)} was lost with its workers {len(ts.died_on)} "
                f"times: {', '.join(ts.died_on)}; the worker was restarted for memory each "
                f"time its value ({megabytes(nbytes)}) was held, past its memory "
                f"limit{limit} with the worker's own memory; giving up (give the workers "
                "a larger memory limit, or make the value smaller)")


def megabytes(n: int) -> str:
    return f"{n / 1e6:.0f} MB"
