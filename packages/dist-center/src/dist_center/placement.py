"""Which worker runs a task: fewest bytes to move, then the least busy; restrictions first.

Pure functions over a ``CenterView``: they decide, ``CenterState`` carries the decision out.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable, Iterator, Mapping

from dist_protocol.addresses import parse_address
from dist_protocol.environment import describe_tag
from dist_protocol.messages import TaskErred

from .defaults import DEFAULT_SATURATION
from .ready import ReadyQueue
from .lineage import Recs
from .records import CenterView, TaskState, WorkerInfo

BUFFER_SECONDS = 0.005  # work to keep queued on a worker beyond its threads, to hide round trips
MAX_MARGIN_PER_THREAD = 64
DEFAULT_TARGET = 0.6  # of the memory limit, for workers that do not state their own
# Partners (tasks without inputs that one dependent combines, as ``x + x.T`` adds blocks
# (i, j) and (j, i)) are placed together. Only small joins count: a task with more inputs than
# this (a concatenation of all the blocks) or a task read by more tasks than this (a broadcast
# value) has no partners, else a whole array would be drawn to one worker.
MAX_PARTNER_FAN = 8
# Bytes per second assumed between workers; deliberately low. Links may be far slower than
# loopback (another rack, a capped link) and the center does not see transfers, so inputs are
# moved to a less busy worker (or an idle one steals) only for waits long beside that time.
BANDWIDTH = 10e6
# Tasks that may wait ahead on a worker (see ``ahead_worker``): per thread, and in one line of
# tasks each waiting for the one before. A link of a fast chain takes the worker less time
# than the center's answer to its finish takes to come back: the worker runs the line
# through and reports it in one batch, the center answers with the next line in one batch,
# and each of those wake-ups of each process costs far more than a link's own work. With a
# line of eight a link costs each process about a third less CPU than with four
# (benchmarks/README.md, "Round twelve"); longer lines would pin still more work to one
# worker and leave more to take back when an input fails, for less.
AHEAD_PER_THREAD = 8
# A task with inputs whose kind took at most this long on average is brief (``is_brief``): far
# less than a message to the center and back, so it is not counted against the worker's
# capacity. A shuffle's splits (a ``getitem`` of a group, 0.04-0.1 ms, twenty a read) filled
# a worker's slots as each read finished, and the next read waited for the center to hear of
# them all, a round trip more each read.
BRIEF_SECONDS = 0.001
# How far into the center's queue a worker looks for a task without inputs whose cousins it
# runs or holds (see ``cousin_choice``): a dozen pairs of a dask array's blocks.
COUSIN_LOOKAHEAD = 24


def capacity(worker: WorkerInfo, avg_duration: float,
             saturation: float = DEFAULT_SATURATION) -> float:
    """Tasks without inputs a worker may hold at once: its threads times ``saturation``, and
    for short tasks about BUFFER_SECONDS of work more unless its memory is above target;
    besides the tasks that gave their slot back (seceded)."""
    return capacity_with_margin(worker, margin(avg_duration), saturation)


def margin(avg_duration: float) -> int:
    """Tasks per thread that make about BUFFER_SECONDS of work (0 while no task has finished)."""
    if avg_duration <= 0:
        return 0
    return min(MAX_MARGIN_PER_THREAD, max(1, math.ceil(BUFFER_SECONDS / avg_duration)))


# Tasks at most this long on average get the largest margin: ``margin`` is at its cap for them.
SHORTEST = BUFFER_SECONDS / MAX_MARGIN_PER_THREAD


def capacity_with_margin(worker: WorkerInfo, margin: int, saturation: float) -> float:
    """``capacity`` with the margin for short tasks worked out already."""
    if saturation == math.inf:
        return math.inf
    slots = max(1, math.ceil(worker.nthreads * saturation))
    if margin and not above_target(worker):
        slots = max(slots, worker.nthreads * (1 + margin))
    return slots + len(worker.long_running)


def above_target(worker: WorkerInfo) -> bool:
    """Its results outgrow the memory it keeps them in (it spills): as its last heartbeat
    said."""
    metrics = worker.metrics
    limit = worker.memory_limit or metrics.get("memory_limit") or 0
    if not limit:
        return False
    target = metrics.get("memory_target") or DEFAULT_TARGET * limit
    return metrics.get("managed", 0) > target


def memory_fraction(worker: WorkerInfo) -> float:
    """Process memory as a share of the limit (0 without a limit)."""
    limit = worker.memory_limit or worker.metrics.get("memory_limit") or 0
    return worker.metrics.get("memory", 0) / limit if limit else 0.0


def decide(view: CenterView, ts: TaskState) -> WorkerInfo | str:
    """Where a task whose inputs are all in memory goes: a worker, ``"queued"`` (no slot or
    resources free now) or ``"no-worker"`` (no running worker may ever take it as things are).

    Tasks with inputs or a ``workers=`` restriction go to the best worker however busy it is;
    others only to a worker with a free slot, else they wait in the center's queue so that a
    worker that joins late or finishes early gets them.
    """
    pool = candidates(ts, view.workers, view.names)
    if not pool:
        return "no-worker"
    spec = ts.spec
    if spec is not None and spec.resources:
        free = [w for w in pool
                if has_resources(free_resources(w, view.tasks), spec.resources)]
        return best_worker(ts, free, view.tasks) if free else "queued"  # type: ignore[return-value]
    if ts.deps or (spec is not None and spec.workers):
        return best_worker(ts, pool, view.tasks,  # type: ignore[return-value]
                           known_duration(view, ts))
    capacity_of = view.capacity_of
    if ts.dependents:
        for worker in pool:  # (a loop, not any(): asked for each root of a graph)
            if worker.occupied < worker.nthreads:
                break  # a worker with an idle thread gets it: running now beats moving later
        else:
            partner = partner_worker(view, ts)
            if partner is not None:
                return partner
    free = [w for w in pool if w.assigned < capacity_of(w)]
    if free:
        return min(free, key=root_cost)
    return "queued"


def ahead_worker(view: CenterView, ts: TaskState) -> WorkerInfo | None:
    """The worker to send the waiting task ``ts`` to before its inputs finish, if any: the
    one on which every input is held or being computed, when placement would choose it anyway
    (none of the inputs to move, and no task but those inputs holding its threads: it starts
    there the moment they finish, no other worker sooner), it takes tasks ahead and has room
    for one more.

    Only an input's one reader goes ahead of it (a chain's next link, a reduction's next
    level), or the few tasks joining partners (``is_partner``: the two sums of ``x + x.T``
    reading blocks (i, j) and (j, i)), which go behind a backlog too. An input may itself
    wait ahead there, so that the links of a chain faster than the center's round trip all
    start on the worker. Bounded so that a long chain never
    floods a worker: at most AHEAD_PER_THREAD such tasks per thread, and a line of at most
    AHEAD_PER_THREAD tasks each waiting for the one before; none to a worker that is paused or
    above its memory target. Tasks with resources (held from the moment a task is sent) and
    actors (made where they are placed) wait to be placed as usual.
    """
    spec = ts.spec
    if spec is None or spec.resources or spec.actor:
        return None
    tasks, stealing = view.tasks, view.stealing
    address = None
    # (a chain's link reads one input: no look at its inputs' readers then)
    partners_only = (1 < len(ts.deps) <= MAX_PARTNER_FAN
                     and all(is_partner(tasks[dep]) for dep in ts.deps))
    for dep in ts.deps:
        dts = tasks[dep]
        if dts.state == "processing":
            if dep in stealing or (len(dts.dependents) > 1 and not partners_only):
                # About to move; or read by several tasks (a shuffle's pieces, a shared
                # value), which placement spreads once the input is done -- unless they
                # join partners, which placement brought together not to move them again.
                return None
            if address is None:
                address = dts.processing_on
            elif dts.processing_on != address:
                return None
        elif dts.state != "memory":
            return None
    if address is None:
        return None  # all held already: placed as any ready task
    # The worker's bounds before the line's: a chain's line walk is the costlier check, and
    # a worker with no room left (the usual answer once a line is full) needs none.
    worker = view.workers.get(address)
    if (worker is None or worker.ahead is None or worker.status != "running"
            or len(worker.ahead) >= AHEAD_PER_THREAD * worker.nthreads
            or (worker.occupied > worker.nthreads and not partners_only)
            or above_target(worker)):
        return None
    if len(worker.ahead) >= AHEAD_PER_THREAD:
        # (a line is made of tasks waiting ahead on the worker: with fewer there, none is
        # too long, and a worker of one thread never needs the walk)
        for dep in ts.deps:  # (the longest line that ends at an input waiting ahead itself)
            dts = tasks[dep]
            if (dts.state == "processing" and dts.waiting_on
                    and ahead_line(tasks, dts, AHEAD_PER_THREAD) >= AHEAD_PER_THREAD):
                return None
    for dep in ts.deps:
        dts = tasks[dep]
        if dts.state == "memory" and address not in dts.who_has:
            return None
    if spec.workers and not candidates(ts, {address: worker}, view.names):
        return None
    if not worker.runs_pickles_of(spec.pickled_with):
        return None
    return worker


# (shared by every answer of none: never changed by whoever reads it)
_NONE_AHEAD: Recs = {}


def ahead_of(view: CenterView, ts: TaskState, worker: WorkerInfo) -> Recs:
    """``ts`` runs on ``worker`` or waits ahead there: the task that may wait ahead behind
    it there, within the worker's bounds (see ``ahead_worker``). Only an input's
    one reader goes ahead of it, so this follows one line: past the dependents waiting
    ahead there already, to the first that is not (when a link of a chain starts, the room
    it leaves goes to the first link not sent yet); a partner's few readers go together."""
    ahead = worker.ahead
    if len(ahead) >= AHEAD_PER_THREAD * worker.nthreads:  # type: ignore[arg-type]
        return _NONE_AHEAD  # (no room there: ``ahead_worker`` would send nothing, no walk)
    tasks = view.tasks
    dependents = ts.dependents
    if len(dependents) > 1 and is_partner(ts):
        # The tasks joining partners go ahead of them all (``ahead_worker``).
        recs: Recs = {}
        for dep_key in dependents:
            dts = tasks[dep_key]
            if dts.state == "waiting" and ahead_worker(view, dts) is worker:
                recs[dep_key] = ("processing", worker.address)
        return recs or _NONE_AHEAD
    while len(dependents) == 1:
        (dep_key,) = dependents  # (unpacked: no iterator made, once per task of the line)
        if dep_key in ahead:  # type: ignore[operator]
            # (waits ahead there already, so it is processing there: the line goes on)
            dependents = tasks[dep_key].dependents
            continue
        dts = tasks[dep_key]
        if dts.state == "waiting" and ahead_worker(view, dts) is worker:
            return {dep_key: ("processing", worker.address)}
        return _NONE_AHEAD
    return _NONE_AHEAD


def is_partner(ts: TaskState) -> bool:
    """A task without inputs read by a few tasks: one that placement runs beside the other
    inputs of its readers (see ``partners``). A task joining only such inputs goes ahead of
    them where they run, whatever that worker's backlog and however many read them, since
    any other worker would fetch them all (the two sums of ``x + x.T`` reading blocks (i, j)
    and (j, i), once placement ran both on one worker)."""
    return not ts.deps and len(ts.dependents) <= MAX_PARTNER_FAN


def ahead_line(tasks: Mapping[str, TaskState], ts: TaskState, limit: int) -> int:
    """How many tasks wait ahead in the longest line that ends at ``ts`` (each waiting for
    the one before, the first for a task that runs), counted up to ``limit``. A task waiting
    ahead waits only for inputs being computed where it is, so the walk stays on one worker."""
    length = 0
    while ts.waiting_on and length < limit:
        length += 1
        waiting_on = ts.waiting_on
        if len(waiting_on) > 1:  # (a chain's link waits for one: the walk is a loop)
            longest = 0
            for dep in waiting_on:
                dts = tasks.get(dep)
                if dts is not None and dts.waiting_on:
                    longest = max(longest, ahead_line(tasks, dts, limit - length))
            return length + longest
        dts = tasks.get(next(iter(waiting_on)))
        if dts is None:
            break
        ts = dts
    return length


def partners(view: CenterView, ts: TaskState) -> Iterator[TaskState]:
    """Tasks without inputs that a dependent of ``ts`` (itself without inputs) combines with
    it: placed apart, one of the two results has to move to the other's worker."""
    dependents = ts.dependents
    if len(dependents) > MAX_PARTNER_FAN:
        return
    tasks = view.tasks
    key = ts.key
    for dependent in dependents:
        dts = tasks.get(dependent)
        if dts is None or len(dts.deps) > MAX_PARTNER_FAN:
            continue
        for dep in dts.deps:
            if dep != key:
                pts = tasks.get(dep)
                if pts is not None and not pts.deps and len(pts.dependents) <= MAX_PARTNER_FAN:
                    yield pts


def has_room_for_partner(view: CenterView, worker: WorkerInfo) -> bool:
    """A running worker below its memory target that holds fewer tasks than its capacity
    and one more per thread: a partner may go beyond the capacity, by that much at most."""
    return (worker.status == "running"
            and worker.assigned < view.capacity_of(worker) + worker.nthreads
            and not above_target(worker))


def partner_worker(view: CenterView, ts: TaskState) -> WorkerInfo | None:
    """The worker that runs or holds a partner of ``ts`` already, while it has room for it
    (see ``has_room_for_partner``); ``ts`` goes there rather than to the least busy."""
    workers = view.workers
    for pts in partners(view, ts):
        where = pts.processing_on if pts.state == "processing" else None
        held = (where,) if where is not None else pts.who_has
        for address in held:
            worker = workers.get(address)
            if worker is not None and has_room_for_partner(view, worker):
                return worker
    return None


def queued_partners(view: CenterView, ts: TaskState, worker: WorkerInfo) -> list[str]:
    """``ts`` was sent to ``worker``: its partners still queued, to send there with it (as
    many as it has room for)."""
    room = view.capacity_of(worker) + worker.nthreads - worker.assigned
    if room <= 0 or worker.status != "running" or above_target(worker):
        return []
    chosen: list[str] = []
    for pts in partners(view, ts):
        spec = pts.spec
        if (pts.state == "queued" and spec is not None and not spec.resources
                and not spec.workers and pts.key not in chosen
                and worker.runs_pickles_of(spec.pickled_with)):
            chosen.append(pts.key)
            if len(chosen) >= room:
                break
    return chosen


def cousin_balance(view: CenterView, ts: TaskState, address: str) -> int:
    """How many more of the results that ``ts``'s results will be combined with are on the
    worker at ``address`` than on any one other worker: the other inputs of its dependents,
    and of their dependents (a tree reduction's next level), counted where they run or are
    held, or for one not placed yet, where its own inputs are. In ``(x + x.T).sum(axis=0)`` a
    partial sum adds the sums of four blocks, each made from a pair of roots: a root whose
    cousins are on the other worker makes one of those sums cross between the workers.

    Small joins only (MAX_PARTNER_FAN at each step), as for partners: 0 past them."""
    dependents = ts.dependents
    if len(dependents) > MAX_PARTNER_FAN:
        return 0
    tasks = view.tasks
    counts: dict[str, int] = {}
    key = ts.key
    for dependent in dependents:
        dts = tasks.get(dependent)
        if dts is None:
            continue
        combiners = dts.dependents
        if len(combiners) > MAX_PARTNER_FAN:
            continue
        deps = dts.deps
        if 1 < len(deps) <= MAX_PARTNER_FAN:  # (a join of one, ``ts`` alone: no call)
            _count_places(tasks, deps, key, counts)
        for combiner in combiners:
            cts = tasks.get(combiner)
            if cts is not None and 1 < len(cts.deps) <= MAX_PARTNER_FAN:
                _count_places(tasks, cts.deps, dependent, counts)
    if not counts:
        return 0
    here = counts.pop(address, 0)
    return here - max(counts.values(), default=0)


def _count_places(tasks: Mapping[str, TaskState], keys: Collection[str], skip: str,
                  counts: dict[str, int]) -> None:
    """Add to ``counts`` the workers that run or hold each of ``keys`` but ``skip`` (or, for
    one waiting, each of its inputs, when they are at most MAX_PARTNER_FAN)."""
    for key in keys:
        if key == skip:
            continue
        dts = tasks.get(key)
        if dts is None:
            continue
        if dts.state == "waiting" and len(dts.deps) <= MAX_PARTNER_FAN:
            for dep in dts.deps:
                _count_place(tasks.get(dep), counts)
        else:
            _count_place(dts, counts)


def _count_place(ts: TaskState | None, counts: dict[str, int]) -> None:
    if ts is None:
        return
    if ts.state == "processing":
        address = ts.processing_on
        if address is not None:
            counts[address] = counts.get(address, 0) + 1
    elif ts.state == "memory":
        for address in ts.who_has:
            counts[address] = counts.get(address, 0) + 1


def cousin_choice(view: CenterView, ts: TaskState, worker: WorkerInfo,
                  queue: ReadyQueue) -> TaskState | None:
    """``worker`` took ``ts`` from the queue, whose cousins (see ``cousin_balance``) are
    mostly on another worker: the first of the COUSIN_LOOKAHEAD tasks now first in ``queue``
    whose cousins are not, to take instead (``ts`` stays queued for the other worker), or None
    to take ``ts``.

    dask orders a graph's roots by rows and columns, so that one after the other in the queue
    feed different partial sums; taken in turn by whichever worker frees a slot, about one in
    three partial sums of the array read a sum from the other worker."""
    address = worker.address
    if cousin_balance(view, ts, address) >= 0:
        return None
    tasks = view.tasks
    for key in queue.first(COUSIN_LOOKAHEAD):
        cts = tasks.get(key)
        if cts is None or cts is ts or cts.state != "queued":
            continue
        spec = cts.spec
        if spec is None or spec.resources or spec.workers \
                or not worker.runs_pickles_of(spec.pickled_with):
            continue
        if cousin_balance(view, cts, address) >= 0:
            return cts
    return None


def root_cost(worker: WorkerInfo) -> tuple:
    """Where a task without inputs goes: a worker below its memory target, the least busy,
    the one using the least of its memory."""
    return (above_target(worker), occupancy(worker), memory_fraction(worker))


def occupancy(worker: WorkerInfo) -> float:
    return worker.occupied / worker.nthreads


def bytes_to_move(task: TaskState, worker: WorkerInfo, tasks: Mapping[str, TaskState]) -> int:
    """Bytes of the task's inputs that ``worker`` does not hold yet."""
    total = 0
    address = worker.address
    for dep in task.deps:
        dts = tasks[dep]
        if address not in dts.who_has:
            total += dts.nbytes
    return total


def candidates(task: TaskState, workers: Mapping[str, WorkerInfo],
               names: Mapping[str, str]) -> list[WorkerInfo]:
    """Running workers the task may go to: all, or those its ``workers=`` restriction names;
    of those, only workers that have the ``resources=`` it asks for (free or not), and for
    pickled code, only workers on the Python that pickled it (one of another minor version
    that joined after the submit would refuse it)."""
    spec = task.spec
    if spec is not None and spec.pickled_with is not None:
        tag = spec.pickled_with
        running = [w for w in workers.values() if w.status == "running"
                   and (w.pickle_tag == tag or w.pickle_tag is None)]  # (runs_pickles_of)
    else:
        running = [w for w in workers.values() if w.status == "running"]
    if spec is not None and spec.resources:
        running = [w for w in running if has_resources(w.resources, spec.resources)]
    if spec is None or not spec.workers:
        return running
    chosen = named(running, spec.workers, names)
    if not chosen and spec.allow_other_workers:
        return running
    return chosen


def only_other_pythons(view: CenterView, ts: TaskState) -> list[WorkerInfo]:
    """The running workers, when there are some and every one is on another Python than the
    one that pickled ``ts`` (else none): it cannot run anywhere in this cluster."""
    spec = ts.spec
    if spec is None or spec.pickled_with is None:
        return []
    running = [w for w in view.workers.values() if w.status == "running"]
    if any(w.runs_pickles_of(spec.pickled_with) for w in running):
        return []
    return running


def other_python_error(ts: TaskState, workers: list[WorkerInfo]) -> TaskErred:
    """What ``ts`` errs with when every worker runs another Python than pickled it."""
    tag = ts.spec.pickled_with if ts.spec is not None else None
    shown = ", ".join(f"{w.address} runs {python_of(w)}" for w in workers[:3])
    more = f" and {len(workers) - 3} more" if len(workers) > 3 else ""
    return TaskErred(
        key=ts.key, exception_type="EnvironmentMismatch",
        message=f"task {ts.key} was pickled by {describe_tag(tag or '?')} and every worker of "
                f"the cluster runs another Python ({shown}{more}): pickled functions and "
                "arguments only run on workers of the same Python minor version (install the "
                "client's Python on the workers, or the workers' on the client)")


def pinned_worker_gone(view: CenterView, ts: TaskState) -> bool:
    """Whether no registered worker is the one the pinned task ``ts`` must run on (a paused
    or retiring one is still there: the task waits for it)."""
    spec = ts.spec
    return spec is not None and not named(view.workers.values(), spec.workers or (),
                                          view.names)


def pinned_worker_gone_error(ts: TaskState) -> TaskErred:
    """What a pinned task errs with when its worker is not in the cluster."""
    workers = ", ".join((ts.spec.workers or ()) if ts.spec is not None else ())
    ran = " (it was running when that worker died)" if ts.died_on else ""
    return TaskErred(
        key=ts.key, exception_type="WorkerGone",
        message=f"task {ts.key} runs on {workers} only, and no such worker is in the cluster "
                f"now{ran}: it left or died, or never joined")


def python_of(worker: WorkerInfo) -> str:
    env = worker.environment or {}
    names = {"cpython": "CPython", "pypy": "PyPy"}
    implementation = env.get("implementation", "?")
    return f"{names.get(implementation, implementation)} {env.get('python', '?')}"


def named(pool: Iterable[WorkerInfo], restriction: Collection[str],
          names: Mapping[str, str]) -> list[WorkerInfo]:
    """The workers of ``pool`` a ``workers=`` restriction names: by address, by name, or by
    host -- every worker on that host, as dask takes a hostname or IP there."""
    allowed = {names.get(w, w) for w in restriction}
    return [w for w in pool if w.address in allowed or host_of(w.address) in allowed]


@functools.lru_cache(maxsize=4096)
def host_of(address: str) -> str:
    try:
        return parse_address(address)[1]
    except ValueError:
        return address


def has_resources(available: dict[str, float], wanted: dict[str, float]) -> bool:
    return all(available.get(name, 0) >= amount for name, amount in wanted.items())


def free_resources(worker: WorkerInfo, tasks: Mapping[str, TaskState]) -> dict[str, float]:
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


def known_duration(view: CenterView, ts: TaskState) -> float | None:
    """Seconds a task of ``ts``'s kind took on average, once one has finished."""
    seen = view.task_durations.by_prefix.get(ts.prefix)
    return seen[1] / seen[0] if seen else None


def is_brief(view: CenterView, ts: TaskState) -> bool:
    """A task with inputs whose kind has finished in at most BRIEF_SECONDS on average."""
    seen = view.task_durations.by_prefix.get(ts.prefix)
    return seen is not None and seen[1] <= BRIEF_SECONDS * seen[0]


def best_worker(task: TaskState, pool: Iterable[WorkerInfo],
                tasks: Mapping[str, TaskState],
                duration: float | None = None) -> WorkerInfo | None:
    """Fewest bytes to receive; ties go to a worker below its memory target, then the least
    busy, then the one using the least of its memory, then the least data held.

    Once tasks of its kind have finished (``duration``), the earliest start instead: the time
    its missing inputs take to arrive (at ``BANDWIDTH``) plus the time the worker's tasks take
    to let it run. A shuffle's output reads pieces from every worker, a few more bytes from
    one than from the other: by bytes alone every output went to the same worker, which ran
    them one after the other while the other had nothing to do.
    """
    best = None
    best_cost: tuple | None = None
    has_deps = bool(task.deps)
    for worker in pool:
        moved = bytes_to_move(task, worker, tasks) if has_deps else 0
        busy = occupancy(worker)
        first = moved if duration is None else moved / BANDWIDTH + busy * duration
        cost = (first, above_target(worker), busy, memory_fraction(worker), worker.nbytes)
        if best_cost is None or cost < best_cost:
            best, best_cost = worker, cost
    return best
