"""What ``--memory-limit`` and the memory fractions mean, read from their text. No I/O
beyond reading how much memory the machine (or its cgroup) grants this process.

The limit is bytes (``4GB``, ``512MiB``, ``300000000``), a fraction of the machine's memory
(``0.5``), ``auto`` (the machine's memory shared out by threads, as dask does) or ``0``/``none``
for no limit. The machine's memory is the smallest of physical memory, the cgroup limit (v2 or
v1) and ``RLIMIT_RSS``, so a worker in a container sizes itself by what it may really use.

Four thresholds, each a fraction of the limit, say what the worker does as memory grows
(the defaults are dask's):

* ``target`` (0.6): spill values to disk (those no queued task reads first, see ``store``)
  once the values held (managed memory) pass it;
* ``spill`` (0.7): spill also when the process as a whole (unmanaged memory included) passes it;
* ``pause`` (0.8): start no new task until the process falls below it again;
* ``terminate`` (0.95): under a nanny, exit so the nanny starts a fresh process.

Any of them can be turned off (``off``, ``false``, ``none`` or ``0``).
"""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from .process_meter import physical_memory

# An idle worker process already uses about 40 MB; below this a limit can only make it pause
# or restart for ever, so it is refused rather than obeyed.
MIN_MEMORY_LIMIT = 100 * 10**6

UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "KIB": 2**10, "M": 10**6, "MB": 10**6,
         "MIB": 2**20, "G": 10**9, "GB": 10**9, "GIB": 2**30, "T": 10**12, "TB": 10**12,
         "TIB": 2**40}
OFF = ("off", "false", "none", "no", "0")
DEFAULT_FRACTIONS = {"target": 0.6, "spill": 0.7, "pause": 0.8, "terminate": 0.95}

_CGROUP_FILES = ("/sys/fs/cgroup/memory.max",  # cgroup v2
                 "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # cgroup v1


def parse_bytes(text: str) -> int:
    """``"4GB"`` -> 4_000_000_000; ``"512MiB"``, ``"1.5G"``, ``"300000000"`` alike."""
    cleaned = text.strip().upper().replace(" ", "")
    number = cleaned.rstrip("KMGTIB")
    unit = cleaned[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = None
    if unit not in UNITS or value is None or value != value or value in (float("inf"),):
        raise ValueError(f"cannot read {text!r} as a size (e.g. 4GB, 512MiB, 300000000)")
    return int(value * UNITS[unit])


def format_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def system_memory() -> int:
    """Bytes this process may use on this machine: the least of physical memory, the cgroup
    limit and ``RLIMIT_RSS``."""
    limit = physical_memory()
    for path in _CGROUP_FILES:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit; v1 says so with a huge number
            limit = min(limit, int(text))
    soft, _ = resource.getrlimit(resource.RLIMIT_RSS)
    if soft > 0:
        limit = min(limit, soft)
    return limit


def parse_memory_limit(text: str | None, nthreads: int, total: int | None = None) -> int:
    """The limit in bytes (0: none) for ``--memory-limit TEXT``; ``ValueError`` says what is
    wrong with the text."""
    if text is None or text.strip().lower() in ("", *OFF):
        return 0
    cleaned = text.strip().lower()
    machine = total if total is not None else system_memory()
    if cleaned == "auto":
        cores = os.cpu_count() or 1
        limit = int(machine * min(1.0, nthreads / cores))
    else:
        try:
            number = float(cleaned)
        except ValueError:
            number = None
        if number is not None and 0 < number <= 1:
            limit = int(number * machine)  # a share of the machine, as dask reads it
        else:
            limit = parse_bytes(text)
            if limit < 0:
                raise ValueError(f"a memory limit cannot be negative ({text!r})")
        limit = min(limit, machine)  # more than the machine has cannot be honoured either
    if limit < MIN_MEMORY_LIMIT:
        raise ValueError(f"a memory limit of {text!r} ({format_bytes(limit)}) is below the "
                         f"minimum of {format_bytes(MIN_MEMORY_LIMIT)}: an idle worker "
                         "already uses about 40 MB, so it would pause or restart for ever")
    return limit


def parse_fraction(text: str | float | None, name: str) -> float | None:
    """A threshold: a fraction in (0, 1.5], or ``None`` when turned off."""
    if text is None:
        return None
    if isinstance(text, str):
        if text.strip().lower() in OFF:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"cannot read {text!r} as the {name} fraction of the memory "
                             "limit (e.g. 0.7, or off)") from None
    else:
        value = float(text)
    if not 0 < value <= 1.5:
        raise ValueError(f"the {name} fraction must be above 0 and at most 1.5 (or off), "
                         f"not {text!r}")
    return value


@dataclass(frozen=True)
class MemoryPolicy:
    """The limit and its thresholds in bytes; a threshold of ``None`` is turned off (and all
    of them are when there is no limit)."""

    limit: int = 0
    target: float | None = DEFAULT_FRACTIONS["target"]
    spill: float | None = DEFAULT_FRACTIONS["spill"]
    pause: float | None = DEFAULT_FRACTIONS["pause"]
    terminate: float | None = DEFAULT_FRACTIONS["terminate"]

    def bytes_at(self, name: str) -> int | None:
        fraction = getattr(self, name)
        if not self.limit or fraction is None:
            return None
        return int(fraction * self.limit)

    def pause_bytes(self, pinned: int) -> int | None:
        """Where the worker pauses while ``pinned`` bytes of values can go neither to disk
        nor anywhere else (larger than the spill space, or unpicklable): the pause fraction
        of the memory left beside them. No pause brings those bytes back, so counting them
        would pause for as long as they are wanted; within the limit, the rest still
        pauses."""
        if not self.limit or self.pause is None:
            return None
        pinned = min(pinned, self.limit)
        return int(pinned + self.pause * (self.limit - pinned))

    def describe(self) -> str:
        if not self.limit:
            return "no memory limit"
        parts = []
        for name in DEFAULT_FRACTIONS:
            fraction = getattr(self, name)
            parts.append(f"{name} {'off' if fraction is None else f'{fraction:g}'}")
        return f"memory limit {format_bytes(self.limit)} ({', '.join(parts)})"
