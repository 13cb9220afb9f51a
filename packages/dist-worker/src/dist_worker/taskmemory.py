"""How much memory a task needs while it runs, learned from the tasks of its kind that ran.

A task's own memory (the frames pandas copies while it sorts or concatenates, what pyarrow
allocates while it reads a file) is seen by no size estimate: only the process grows, then
shrinks when the task returns. The worker measures each task's peak above the process's size
when it started (on Linux, the kernel's high-water mark of the process, reset as the task
starts; elsewhere its size as it ends) and remembers, per kind of task (the key's prefix, as
the dashboard names it: ``read_parquet`` for ``('read_parquet-<token>', 3)``), the largest of
its last few peaks. Before the next task of that kind starts, results spill until the process
plus that peak stays under the pause threshold (``Monitor.make_room``).

With several threads running, a peak measured is the whole process's (other tasks, transfers):
an overestimate, which only makes the worker spill sooner.
"""
from __future__ import annotations

import os
import sys
from collections import deque

from .process_meter import ProcFile

REMEMBERED = 5  # peaks kept per kind of task: the largest of them is the expectation
MAX_KINDS = 1000  # kinds remembered; past that the oldest kind is forgotten
_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"
STATUS_BYTES = 16384  # /proc/self/status is about 1.5 KB; VmHWM and VmRSS are in its first half


def task_kind(key: str) -> str:
    """The function name a key starts with: ``inc`` for ``inc-<hash>``; for a dask tuple key
    (``"('sum-aggregate-<token>', 0)"``) the name in its first element."""
    name = key[2:].split(key[1], 1)[0] if key.startswith(("('", '("')) else key
    return (name.rsplit("-", 1)[0] if "-" in name else name) or key


class PeakMeter:
    """The process's peak resident memory since the last ``reset`` (Linux: ``VmHWM``, which
    writing ``5`` to ``clear_refs`` resets); ``None`` where the kernel does not offer it."""

    def __init__(self) -> None:
        self._clear_refs = ProcFile(_CLEAR_REFS, os.O_WRONLY)
        self._status = ProcFile(_STATUS)
        self.available = sys.platform.startswith("linux") and self._try_reset()

    def _try_reset(self) -> bool:
        try:
            self._clear_refs.write(b"5")
        except OSError:
            return False
        return self._read()[0] is not None

    def reset(self) -> None:
        if self.available:
            try:
                self._clear_refs.write(b"5")
            except OSError:
                self.available = False

    def peak(self) -> int | None:
        return self.peak_and_size()[0]

    def peak_and_size(self) -> tuple[int | None, int | None]:
        """The peak since the last reset and the resident size now, from one read of the
        process's status (each ``None`` where it is not to be had)."""
        return self._read() if self.available else (None, None)

    def _read(self) -> tuple[int | None, int | None]:
        try:
            status = self._status.read(STATUS_BYTES)
        except OSError:
            return None, None
        return _kilobytes(status, b"VmHWM:"), _kilobytes(status, b"VmRSS:")


def _kilobytes(status: bytes, field: bytes) -> int | None:
    """The bytes of a ``Field:   1234 kB`` line of ``/proc/self/status``."""
    try:
        start = status.index(field) + len(field)
        return int(status[start:status.index(b"kB", start)]) * 1024
    except ValueError:
        return None


class TaskMemory:
    """Per kind of task, the memory its recent runs took above where the process started."""

    def __init__(self) -> None:
        self.peaks: dict[str, deque[int]] = {}
        # The largest peak of any kind, for kinds not seen yet, and how many remembered peaks
        # equal it. Keys named one per task (``key=f"job-{i}"``) make every task a new kind:
        # a walk of every kind's peaks per task cost ~0.5 ms each. None: to be found again,
        # the last peak that large having been forgotten.
        self._largest: int | None = 0
        self._largest_count = 0

    def record(self, key: str, growth: int) -> None:
        kind = task_kind(key)
        seen = self.peaks.pop(kind, None)  # re-inserted: the dict's order is recency
        if seen is None:
            seen = deque(maxlen=REMEMBERED)
            if len(self.peaks) >= MAX_KINDS:
                for forgotten in self.peaks.pop(next(iter(self.peaks))):
                    self._forget(forgotten)
        elif len(seen) == REMEMBERED:
            self._forget(seen[0])  # the append below pushes it out
        growth = max(0, growth)
        seen.append(growth)
        self.peaks[kind] = seen
        if self._largest is None:
            return
        if growth > self._largest:
            self._largest, self._largest_count = growth, 1
        elif growth == self._largest:
            self._largest_count += 1

    def _forget(self, peak: int) -> None:
        if peak == self._largest:
            self._largest_count -= 1
            if self._largest_count <= 0:
                self._largest = None

    def expected(self, key: str) -> int:
        """The memory a task of ``key``'s kind is expected to take while it runs: the largest
        of its kind's recent peaks; for a kind not seen yet, the largest of any kind's."""
        seen = self.peaks.get(task_kind(key))
        if seen:
            return max(seen)
        if self._largest is None:
            every = [peak for peaks in self.peaks.values() for peak in peaks]
            self._largest = max(every, default=0)
            self._largest_count = every.count(self._largest)
        return self._largest
