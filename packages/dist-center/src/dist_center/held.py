"""Tasks held back because they seem to freeze the workers that run them.

A task that holds the GIL (a C call: a backtracking regex, a long sort) for longer than the
heartbeat timeout silences its worker: no thread there can send a heartbeat, and the center
removes the worker. Moved to the next worker, the task silences that one too. Once a second
worker went silent while running it, the center stops handing it on: the task is held (in
``no-worker``, but not retried when any worker joins) until one of the workers that went
silent with it registers again (with its result, or else it runs as usual), the connection
of each of them closes (they did die: it runs again, and those deaths count), or ``limit``
seconds pass (it fails as ``KilledWorker``). A worker that hangs (stopped, partitioned) is
still removed within the timeout, and the other tasks it was running move at once.

``Held`` only keeps the record; ``CenterState`` makes the transitions.
"""
from __future__ import annotations

from dataclasses import dataclass

from dist_protocol.key_names import shown_key
from dist_protocol.messages import TaskErred

from .records import TaskState

# Silent workers before a task is held: the first may have hung for its own reasons.
HOLD_AFTER_SILENT = 2
LIMIT_IN_HEARTBEAT_TIMEOUTS = 60  # how long a held task waits for its workers, by default


@dataclass(slots=True)
class Hold:
    task: TaskState
    workers: list[str]  # silent with it, not back and not closed yet
    since: float


class Held:
    __slots__ = ("holds", "limit")

    def __init__(self, limit: float = LIMIT_IN_HEARTBEAT_TIMEOUTS * 5.0) -> None:
        self.holds: dict[str, Hold] = {}
        self.limit = limit  # seconds

    def holds_back(self, ts: TaskState) -> bool:
        hold = self.holds.get(ts.key)
        return hold is not None and hold.task is ts and ts.state == "no-worker"

    def hold(self, ts: TaskState, workers: list[str], now: float) -> None:
        self.holds[ts.key] = Hold(ts, workers, now)

    def worker_back(self, address: str) -> list[TaskState]:
        """``address`` registered again: the tasks held for it are let go (the registration
        brought the result, or the task runs as any other)."""
        freed = [key for key, hold in self.holds.items() if address in hold.workers]
        return self._still_held([self._let_go(key) for key in freed])

    def worker_closed(self, address: str) -> list[TaskState]:
        """The connection of ``address``, silent, closed: it will not come back. The tasks held
        for no other worker now are let go."""
        freed = []
        for key, hold in self.holds.items():
            if address in hold.workers:
                hold.workers.remove(address)
                if not hold.workers:
                    freed.append(key)
        return self._still_held([self._let_go(key) for key in freed])

    def overdue(self, now: float) -> list[tuple[TaskState, TaskErred]]:
        """The tasks held for longer than the limit, let go with their error."""
        late = [key for key, hold in self.holds.items() if now - hold.since >= self.limit]
        out = []
        for key in late:
            hold = self.holds[key]
            ts = self._let_go(key)
            if ts.state != "no-worker":  # (released, or moved on, meanwhile)
                continue
            out.append((ts, TaskErred(
                key=key, exception_type="KilledWorker",
                message=f"task {shown_key(key)} made the workers running it go silent (no "
                        f"heartbeat: it may hold the GIL): {', '.join(hold.workers)}, and "
                        f"none came back within {self.limit:.0f} s; giving up")))
        return out

    def end(self, key: str) -> None:
        """The hold of ``key``, if any, is over (its task left ``no-worker`` meanwhile)."""
        self.holds.pop(key, None)

    def drop_ended(self) -> None:
        """Drop the records of tasks that left ``no-worker`` (released, forgotten, failed):
        each keeps its task, and that its payload, until then."""
        for key in [key for key, hold in self.holds.items() if hold.task.state != "no-worker"]:
            del self.holds[key]

    def clear(self) -> None:
        self.holds.clear()

    def _let_go(self, key: str) -> TaskState:
        return self.holds.pop(key).task

    @staticmethod
    def _still_held(tasks: list[TaskState]) -> list[TaskState]:
        # A task released (or moved on, its input lost) while held is no longer this one's.
        return [ts for ts in tasks if ts.state == "no-worker"]
