"""How much to spill when the process, not the values alone, runs short of memory: decisions
from numbers, no values and no I/O (``monitor.py`` and ``store.py`` carry them out).

Spilling a value frees at most its own size and costs a write now and, if a task here reads it
later, a read then. The values go in the store's spill order: *idle* ones first (no task
queued here reads them: their readers here have finished, or none is planned yet), then
*wanted* ones (a queued task reads them, ``readers.UpcomingReads``), read furthest ahead first.

At the monitor's look (``by_process``), past *spill*, values spill until the process is back
under *target* by their estimated sizes; the process need not get there, since part of it is
not values (libraries, the allocator's free lists, the running tasks' own memory). Wanted
values are kept, though, while a task is running and spilling every value would still leave
the process above *pause*: that excess is mostly the running task's, which comes back when it
returns, and the values spilled would be read back by the next tasks at once. Past
*terminate*, or with no task running (nothing else will bring memory down), they spill too.

Keeping more of them is not better: a worker above *pause* is paused, and the center moves its
queued tasks to other workers, whose inputs then travel. On a task shuffle at 400 MB a worker,
keeping wanted values whenever spilling all could not bring the process under *target*, or
spilling them only down to *spill*, paused the workers two to four times as often and read
more back than spilling them to *target* (benchmarks/README.md).

Before a task starts (``before_task``), values (never the task's own inputs) spill so that the
process plus the memory its kind is expected to take stays under *pause*.

When a value comes into memory between two looks (``on_arrival``) with the process already past
*pause*, values spill at once until it is back under *pause*: a burst of results or arriving
inputs shorter than the monitor's interval no longer carries the process past the limit.

A plan is consulted value by value in spill order, each value's size taken off the process's
estimate as it goes.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .memory import MemoryPolicy


@dataclass(frozen=True)
class Candidate:
    """A value in memory that may spill: its key, its estimated size, and whether a task
    queued here will read it."""

    key: str
    weight: int
    wanted: bool = False


class SpillPlan:
    """Spill while the process's estimate is above the goal for the kind of value offered;
    ``None`` as a goal: never that kind. The wanted goal is never below the idle one."""

    def __init__(self, process: int, idle_goal: int | None, wanted_goal: int | None):
        self.process = process  # bytes, falling by each value spilled
        self.idle_goal = idle_goal
        if wanted_goal is not None and idle_goal is not None:
            wanted_goal = max(wanted_goal, idle_goal)
        self.wanted_goal = wanted_goal

    @property
    def needed(self) -> bool:
        return any(goal is not None and self.process > goal
                   for goal in (self.idle_goal, self.wanted_goal))

    def wants(self, weight: int, wanted: bool) -> bool:
        """Whether to spill a value of ``weight`` bytes; if so, the estimate falls by it."""
        goal = self.wanted_goal if wanted else self.idle_goal
        if goal is None or self.process <= goal:
            return False
        self.process -= weight
        return True

    def undo(self, weight: int) -> None:
        """A value ``wants`` chose could not be spilled after all (it was pinned)."""
        self.process += weight

    def choose(self, candidates: Iterable[Candidate]) -> list[str]:
        """The keys to spill of ``candidates``, given in spill order; stops at the first one
        kept, as every later one is kept too (wanted values come after idle ones, and their
        goal is never below the idle one)."""
        chosen = []
        for candidate in candidates:
            if not self.wants(candidate.weight, candidate.wanted):
                break
            chosen.append(candidate.key)
        return chosen


NOTHING = SpillPlan(0, None, None)


def by_process(policy: MemoryPolicy, process: int, spillable: int,
               task_running: bool = False) -> SpillPlan:
    """What to spill at the monitor's look, with the process at ``process`` bytes,
    ``spillable`` of them values that may go to disk, and whether a task runs on a thread."""
    spill = policy.bytes_at("spill")
    if spill is None or process <= spill:
        return NOTHING
    target = policy.bytes_at("target")
    goal = spill if target is None else min(target, spill)
    pause = policy.bytes_at("pause")
    terminate = policy.bytes_at("terminate")
    floor = process - spillable  # the process with every value spilled, by the estimates
    keep_wanted = (task_running and pause is not None and floor > pause
                   and (terminate is None or process <= terminate))
    return SpillPlan(process, goal, None if keep_wanted else goal)


def before_task(policy: MemoryPolicy, process: int, expected: int) -> SpillPlan:
    """What to spill before a task whose kind is expected to take ``expected`` bytes more
    while it runs starts, with the process at ``process`` bytes."""
    ceiling = policy.bytes_at("pause") or policy.bytes_at("terminate")
    if ceiling is None or policy.bytes_at("spill") is None:
        return NOTHING
    return SpillPlan(process, ceiling - expected, ceiling - expected)


def on_arrival(policy: MemoryPolicy, process: int) -> SpillPlan:
    """What to spill as a value comes into memory, with the process at ``process`` bytes."""
    pause = policy.bytes_at("pause")
    if pause is None or policy.bytes_at("spill") is None or process <= pause:
        return NOTHING
    return SpillPlan(process, pause, pause)
