"""Which worker runs a task: fewest bytes to move, then the least busy; restrictions first."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import TaskState, WorkerInfo


def occupancy(worker: WorkerInfo) -> float:
    return len(worker.processing) / worker.nthreads


def bytes_to_move(task: TaskState, worker: WorkerInfo, tasks: dict) -> int:
    """Bytes of the task's inputs that ``worker`` does not hold yet."""
    total = 0
    address = worker.address
    for dep in task.deps:
        dts = tasks[dep]
        if address not in dts.who_has:
            total += dts.nbytes
    return total


def candidates(task: TaskState, workers: dict[str, WorkerInfo],
               names: dict[str, str]) -> list[WorkerInfo]:
    """Running workers the task may go to: all, or those its ``workers=`` restriction names;
    of those, only workers that have the ``resources=`` it asks for (free or not)."""
    spec = task.spec
    running = [w for w in workers.values() if w.status == "running"]
    if spec is not None and spec.resources:
        running = [w for w in running if has_resources(w.resources, spec.resources)]
    if spec is None or not spec.workers:
        return running
    allowed = {names.get(w, w) for w in spec.workers}
    chosen = [w for w in running if w.address in allowed]
    if not chosen and spec.allow_other_workers:
        return running
    return chosen


def has_resources(available: dict[str, float], wanted: dict[str, float]) -> bool:
    return all(available.get(name, 0) >= amount for name, amount in wanted.items())


def free_resources(worker: WorkerInfo, tasks: dict) -> dict[str, float]:
    """What ``worker`` has left of its resources with the tasks it was sent running.

    Counted from its tasks each time (not kept up to date on the side): every way a task
    leaves a worker (finished, erred, freed, stolen, the worker gone) frees its share."""
    free = dict(worker.resources)
    for key in worker.processing:
        spec = tasks[key].spec
        if spec is not None and spec.resources:
            for name, amount in spec.resources.items():
                free[name] = free.get(name, 0) - amount
    return free


def best_worker(task: TaskState, pool: Iterable[WorkerInfo], tasks: dict) -> WorkerInfo | None:
    """Fewest bytes to receive; ties go to the least busy, then the least memory held."""
    best = None
    best_cost: tuple | None = None
    has_deps = bool(task.deps)
    for worker in pool:
        cost = (bytes_to_move(task, worker, tasks) if has_deps else 0,
                occupancy(worker), worker.nbytes)
        if best_cost is None or cost < best_cost:
            best, best_cost = worker, cost
    return best
