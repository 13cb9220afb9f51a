"""Giving memory back to the operating system after a large graph is released.

Freed task records leave the C heap full of holes that glibc keeps for later; without a trim
the center's resident size stays at its peak long after the tasks are gone. ``CenterState``
decides when (it compacts its tables after a big release, on a ``TimeElapsed`` event); the
server then calls ``trim_heap``.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import sys

log = logging.getLogger("dist.center")


def _libc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class HeapTrimmer:
    def __init__(self) -> None:
        self._trim = _libc_trim()

    def trim(self) -> None:
        """Collect the garbage the compacted tables left and hand free pages back."""
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        log.info("compacted the center's tables after a large release and trimmed the heap")
