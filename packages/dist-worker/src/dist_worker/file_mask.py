"""The worker's file creation mask, put back when a task changes it.

``os.umask`` is process-wide: a task that set it to 0o777 (to keep its own files private,
say) left every spill file the worker made after it with no permission at all (mode 000),
which a worker run as any user but root cannot open again to read its value back. The mask
the worker started with is put back before each spill and at each heartbeat: one ``umask``
call each (it cannot be read without being set), nothing per task. A task that sets a mask
for a file of its own and then puts its own back may, in between, find the worker's.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger("dist.worker")


def _current() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_KEPT = _current()  # (as the worker process started: imported before any task runs)


def put_back_file_mask() -> None:
    """Put back the file creation mask the worker started with if a task changed it."""
    found = os.umask(_KEPT)
    if found != _KEPT:
        log.warning("the file creation mask was %03o (a task's os.umask?): put back to %03o",
                    found, _KEPT)


__all__ = ["put_back_file_mask"]
