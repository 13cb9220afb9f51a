"""What the center would scale to: pure functions over a ``CenterView``, for ``adaptive-target``.

The work the center has is counted per task prefix, from ``task_counts`` (no walk over the
tasks): the tasks ready to run (queued, waiting for a worker) and those running, each at its
prefix's average duration so far. Enough threads to finish it in ``target_duration`` are
wanted, never more than one per task (a few long tasks do not ask for a hundred workers).
Memory asks too: data filling more than 60% of the workers' limits asks for twice the workers.

Below the current count, the workers to let go are idle ones holding the least data; while any
data is held at least one worker stays, so retiring never has nowhere to put it.
"""
from __future__ import annotations

import math

from dist_protocol.messages import AdaptiveTarget, AdaptiveTargetReply

from .records import CenterView, WorkerInfo

# A task kind that has not finished once yet is assumed to take this long (as dask does).
UNKNOWN_DURATION = 0.5
WORK_STATES = ("queued", "no-worker", "processing")
MEMORY_FRACTION = 0.6  # data above this share of the workers' memory limits asks for more


def work(view: CenterView) -> tuple[float, int]:
    """Seconds of work the center has (ready and running tasks), and how many tasks that is."""
    seconds, count = 0.0, 0
    durations = view.task_durations.by_prefix
    for prefix, counts in view.task_counts.items():
        tasks = sum(counts.get(state, 0) for state in WORK_STATES)
        if not tasks:
            continue
        observed = durations.get(prefix)
        average = observed[1] / observed[0] if observed else UNKNOWN_DURATION
        seconds += tasks * average
        count += tasks
    return seconds, count


def threads_wanted(view: CenterView, target_duration: float) -> int:
    seconds, tasks = work(view)
    if not tasks:
        return 0
    wanted = math.ceil(seconds / target_duration) if target_duration > 0 else tasks
    return max(1, min(tasks, wanted))


def _live(view: CenterView) -> list[WorkerInfo]:
    return [w for w in view.workers.values() if w.status in ("running", "paused")]


def memory_bound(workers: list[WorkerInfo]) -> bool:
    limit = sum(w.memory_limit for w in workers)
    held = sum(w.nbytes for w in workers)
    return limit > 0 and held > MEMORY_FRACTION * limit


def workers_to_retire(view: CenterView, keep: int) -> list[WorkerInfo]:
    """Idle workers to retire so that ``keep`` stay, those holding the least data first; at
    least one stays while any data is held, and the rest's memory limits must hold it all."""
    workers = _live(view)
    held = sum(w.nbytes for w in workers)
    if held or any(w.has_what for w in workers):
        keep = max(keep, 1)
    idle = sorted((w for w in workers if not w.processing),
                  key=lambda w: (w.nbytes, len(w.has_what), w.name))
    chosen: list[WorkerInfo] = []
    remaining = list(workers)
    for worker in idle:
        if len(remaining) <= keep:
            break
        after = [w for w in remaining if w is not worker]
        limit = sum(w.memory_limit for w in after)
        if held and limit and held > MEMORY_FRACTION * limit and all(
                w.memory_limit for w in after):
            break  # the others could not hold the data without going past their limits
        chosen.append(worker)
        remaining = after
    return chosen


def target(view: CenterView, msg: AdaptiveTarget) -> AdaptiveTargetReply:
    workers = _live(view)
    threads = threads_wanted(view, msg.target_duration)
    size = (sum(w.nthreads for w in workers) / len(workers)) if workers else 1.0
    wanted = math.ceil(threads / size) if threads else 0
    if memory_bound(workers):
        wanted = max(wanted, 2 * len(workers))
    retire: list[str] = []
    if wanted < len(workers):
        chosen = workers_to_retire(view, wanted)
        retire = [w.name for w in chosen]
        wanted = len(workers) - len(chosen)
    return AdaptiveTargetReply(id=msg.id, target=wanted, threads=threads,
                               workers=len(workers), retire=retire)
