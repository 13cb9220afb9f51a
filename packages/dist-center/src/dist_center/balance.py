"""Work stealing: tasks waiting on a busy worker move to an idle one.

Tasks with inputs go where their inputs are, however busy that worker is, and each worker may
hold a few tasks beyond its threads. When the center's queue is empty and a worker has idle
threads while another has tasks it has not started, the center asks the busy worker to give
some up (``steal-request``). The worker gives up those not yet running (``steal-reply``), and
the center sends them to the idle worker. A task is taken only when moving its inputs costs
less than running it, so stealing never turns cheap local work into expensive transfers.

Pure functions over a ``CenterView``: ``plan`` says which requests to send; ``CenterState``
sends them and records what it asked for.
"""
from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Container

from . import placement
from .records import CenterView, TaskState, WorkerInfo

# Assumed until tasks of a kind have finished: worth moving unless inputs are large.
UNKNOWN_DURATION = 0.5  # seconds
BANDWIDTH = placement.BANDWIDTH  # see there
# Below this much queued work on a worker (in seconds per thread), stealing is not worth its
# round trip: the worker will be done before the stolen tasks would start elsewhere.
MIN_BACKLOG = 0.005
MAX_PER_REQUEST = 1000
SCAN_PER_TASK, SCAN_EXTRA = 4, 16  # waiting tasks weighed per task a thief has room for


def expected_duration(view: CenterView, ts: TaskState) -> float:
    seen = view.task_durations.by_prefix.get(ts.prefix)
    if seen:
        count, seconds = seen
        return seconds / count
    return UNKNOWN_DURATION


def plan(view: CenterView) -> list[tuple[str, str, list[str]]]:
    """Which busy workers to ask for which waiting tasks, for the workers with idle threads:
    ``(victim, thief, keys)`` for each request to send."""
    workers = view.workers
    if len(workers) < 2 or view.queue:
        return []  # idle workers take queued work first
    if not any_unstarted(view):
        return []  # nothing to take (the usual case)
    # (nor anybody to take it, in most steps of a graph: every thread busy; checked before
    # the steals under way are counted, ``occupied`` written out)
    for worker in workers.values():
        ahead = worker.ahead
        if worker.status == "running" and (len(worker.processing) - len(worker.long_running)
                                           - (len(ahead) if ahead else 0)) < worker.nthreads:
            break
    else:
        return []
    incoming = Counter(view.stealing.values())
    thieves = [w for w in view.workers.values()
               if w.status == "running" and w.occupied + incoming[w.address] < w.nthreads]
    if not thieves:
        return []
    asked = _Asked(view.stealing)
    requests = []
    for thief in sorted(thieves, key=lambda w: w.occupied + incoming[w.address]):
        room = (view.capacity_of(thief) - thief.assigned
                - incoming[thief.address])
        victim = _busiest(view, thief, asked)
        if victim is None:
            break
        keys = _choose(view, victim, thief, room, asked)
        if keys:
            asked.mine.update(keys)
            incoming[thief.address] += len(keys)
            requests.append((victim.address, thief.address, keys))
    return requests


def any_unstarted(view: CenterView) -> bool:
    """Whether some worker holds a task it has not started (more than it has threads): what
    any steal takes."""
    # (a loop, not any(), and ``worker.assigned`` written out: each a call that cost more
    # than the test)
    for worker in view.workers.values():
        ahead = worker.ahead
        if len(worker.processing) - (len(ahead) if ahead else 0) > worker.nthreads:
            return True
    return False


class _Asked(Container):
    """Keys asked back already: by earlier steps, or by this plan."""

    def __init__(self, earlier: Container[str]):
        self.earlier = earlier
        self.mine: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self.earlier or key in self.mine


def _waiting_on(worker: WorkerInfo, asked: Container[str]) -> list[str]:
    """Tasks assigned to ``worker`` beyond its threads, newest first, not already asked for."""
    extra = worker.occupied - worker.nthreads
    if extra <= 0:
        return []
    # (a task sent ahead of its inputs waits for them there: moving it would move them; it
    # is not counted in ``occupied`` either)
    ahead = worker.ahead or ()
    newest = itertools.islice(
        (key for key in reversed(worker.processing)
         if key not in worker.long_running and key not in ahead), extra)
    return [key for key in newest if key not in asked]


def _busiest(view: CenterView, exclude: WorkerInfo, asked: Container[str]) -> WorkerInfo | None:
    best, best_backlog = None, MIN_BACKLOG
    for worker in view.workers.values():
        if worker is exclude:
            continue
        waiting = _waiting_on(worker, asked)
        if not waiting:
            continue
        sample = view.tasks[waiting[0]]
        backlog = (_until_a_thread_frees(view, worker)
                   + len(waiting) * expected_duration(view, sample) / worker.nthreads)
        if backlog > best_backlog:
            best, best_backlog = worker, backlog
    return best


def _until_a_thread_frees(view: CenterView, worker: WorkerInfo) -> float:
    """How long the tasks holding ``worker``'s threads (the oldest it was sent) are expected
    to run: the shortest of them. Known-fast tasks waiting behind a long computation, or
    behind a task of a kind never seen to finish (one waiting on an event, say), wait for it
    to end however little work they are, while another worker idles."""
    ahead = worker.ahead or ()
    holding = itertools.islice(
        (key for key in worker.processing
         if key not in worker.long_running and key not in ahead), worker.nthreads)
    return min((expected_duration(view, view.tasks[key]) for key in holding), default=0.0)


def _choose(view: CenterView, victim: WorkerInfo, thief: WorkerInfo, room: float,
            asked: Container[str]) -> list[str]:
    waiting = _waiting_on(victim, asked)
    # Leave the victim as much as it would take to finish alongside the thief.
    wanted = min(room, MAX_PER_REQUEST, max(1, len(waiting) // 2))
    chosen: list[str] = []
    # Only the newest few are looked at: a plan is made at every step while a worker waits
    # for work, and the tasks behind them are of the same kinds (a shuffle's hundreds of
    # pieces, each not worth moving its input for, were weighed one by one at every step).
    for key in itertools.islice(waiting, int(SCAN_PER_TASK * wanted) + SCAN_EXTRA):
        if len(chosen) >= wanted:
            break
        ts = view.tasks[key]
        if not may_run_on(view, ts, thief):
            continue
        transfer = placement.bytes_to_move(ts, thief, view.tasks) / BANDWIDTH
        if transfer < expected_duration(view, ts):
            chosen.append(key)
    return chosen


def evacuation(view: CenterView, worker: WorkerInfo) -> list[str]:
    """``worker`` paused (its memory is short): the tasks it has not started, to place again
    among the running workers. With none running, they stay where they are: this worker is as
    good a place as the queue to wait for memory."""
    if not any(w.status == "running" for w in view.workers.values() if w is not worker):
        return []
    return [key for key in worker.processing if key not in view.stealing]


def may_run_on(view: CenterView, ts: TaskState, worker: WorkerInfo) -> bool:
    if ts.spec is not None and ts.spec.resources:
        return False  # placed only where its resources are free; never moved
    return bool(placement.candidates(ts, {worker.address: worker}, view.names))


def stale_steals(view: CenterView, address: str) -> list[str]:
    """A worker left: its pending steals, either way, will never be answered or used."""
    stale = []
    for key, thief in view.stealing.items():
        ts = view.tasks.get(key)
        if thief == address or ts is None or ts.processing_on in (None, address):
            stale.append(key)
    return stale
