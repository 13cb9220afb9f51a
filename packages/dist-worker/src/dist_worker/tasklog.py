"""A worker's log of its tasks' states, read: ``(key, start, finish, stimulus_id, time)``
entries, oldest first, as ``WorkerState`` appends them (a bounded deque, written out where it
appends, on the task's path). What a key's story is, and which tasks a signal may have come
from, are read from it here."""
from __future__ import annotations

from collections.abc import Collection, Iterable, Reversible

Entry = tuple[str, str, str, str, float]  # key, start, finish, stimulus_id, time
RUNNING = ("executing", "long-running")  # on a thread, with a slot or without


def story(log: Iterable[Entry], keys: Collection[str]) -> list[Entry]:
    """The entries of ``keys``."""
    return [entry for entry in log if entry[0] in keys]


def last_ended(log: Reversible[Entry]) -> Entry | None:
    """The entry of the task that last stopped running."""
    for entry in reversed(log):
        if entry[1] in RUNNING and entry[2] not in RUNNING:
            return entry
    return None


def running_at(log: Reversible[Entry], at: float, running: set[str],
               within: float) -> list[str]:
    """The tasks that ran at ``at``: of ``running`` (now) and those that ended since, the
    ones that had not started after it; if none, the last to end, if it ended ``within``
    seconds before (what it left behind, a subprocess say, may act after it)."""
    ended_since, started_since = set(), set()
    for key, start, finish, _, when in reversed(log):
        if when < at:
            break
        if finish in RUNNING and start not in RUNNING:
            started_since.add(key)
        elif start in RUNNING and finish not in RUNNING:
            ended_since.add(key)
    named = sorted((running | ended_since) - started_since)
    if not named:
        last = last_ended(log)
        if last is not None and at - within <= last[4] <= at:
            named = [last[0]]
    return named


__all__ = ["Entry", "RUNNING", "last_ended", "running_at", "story"]
