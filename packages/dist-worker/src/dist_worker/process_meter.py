"""This process's resident memory and CPU use, as psutil reports them.

On Linux they are read from ``/proc/self/statm`` and ``os.times()``, the sources psutil reads
itself: importing psutil cost a worker more CPU at start-up than everything it does to set
itself up. Elsewhere psutil measures them, when it is installed.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

from . import forks

STATM = "/proc/self/statm"


class ProcFile:
    """A file of ``/proc/self`` kept open, read and written at offset 0 (a third of what
    opening it each time costs: the worker reads these around every task run on a thread).
    Opened again in a forked child, whose ``self`` is another process."""

    def __init__(self, path: str, flags: int = os.O_RDONLY) -> None:
        self.path, self.flags = path, flags
        self._forks = -1  # the fork count it was opened at (-1: not yet opened)
        self._fd = -1

    def _descriptor(self) -> int:
        if self._forks != forks.count:
            inherited, self._fd = self._fd, os.open(self.path, self.flags)
            self._forks = forks.count
            if inherited >= 0:
                os.close(inherited)
        return self._fd

    def read(self, size: int = 4096) -> bytes:
        return os.pread(self._descriptor(), size, 0)

    def write(self, data: bytes) -> None:
        os.pwrite(self._descriptor(), data, 0)

    def __del__(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass


class ProcStatMeter:
    """``psutil.Process().memory_info().rss`` and ``.cpu_percent()``, from ``/proc``."""

    def __init__(self) -> None:
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self._last: tuple[float, float] | None = None  # (wall, CPU seconds) at the last call
        self._statm = ProcFile(STATM)

    def rss(self) -> int:
        return int(self._statm.read(256).split()[1]) * self.page_size

    def cpu_percent(self) -> float:
        """Percent of one core used since the last call (0.0 at the first), as psutil."""
        times = os.times()
        now = (time.monotonic(), times.user + times.system)
        last, self._last = self._last, now
        if last is None or now[0] <= last[0]:
            return 0.0
        return (now[1] - last[1]) / (now[0] - last[0]) * 100


class PsutilMeter:
    def __init__(self, process: Any) -> None:
        self.process = process

    def rss(self) -> int:
        rss: int = self.process.memory_info().rss
        return rss

    def cpu_percent(self) -> float:
        percent: float = self.process.cpu_percent()
        return percent


def process_meter() -> ProcStatMeter | PsutilMeter | None:
    """A meter of this process (None without ``/proc`` and without psutil)."""
    if sys.platform.startswith("linux") and os.path.exists(STATM):
        return ProcStatMeter()
    try:
        import psutil
    except ImportError:
        return None
    return PsutilMeter(psutil.Process(os.getpid()))


def physical_memory() -> int:
    """The machine's memory in bytes, as ``psutil.virtual_memory().total``."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no such names on this system
        import psutil

        total: int = psutil.virtual_memory().total
        return total
