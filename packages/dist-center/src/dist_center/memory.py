"""Giving memory back to the operating system after a large graph is released.

Freed task records leave the C heap full of holes that glibc keeps for later; without a trim
the center's resident size stays at its peak long after the tasks are gone.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import sys

log = logging.getLogger("dist.center")
TRIM_AFTER_RELEASING = 10_000  # tasks


def _libc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class HeapTrimmer:
    def __init__(self) -> None:
        self.peak = 0
        self._trim = _libc_trim()

    def tick(self, state) -> bool:
        """Called periodically; after a big release, shrinks the state's tables and trims."""
        tasks = len(state.tasks)
        self.peak = max(self.peak, tasks)
        if self.peak - tasks < TRIM_AFTER_RELEASING or tasks > self.peak // 2:
            return False
        state.compact()
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        log.info("released %d tasks: compacted the tables and trimmed the heap",
                 self.peak - tasks)
        self.peak = tasks
        return True
