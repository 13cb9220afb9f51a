"""The allocator the center runs on, chosen before the center's modules are imported (see
``launch``)."""
from __future__ import annotations

import os
import sys


def use_system_allocator(module: str = "dist_center.launch") -> None:
    """Run the center on the C library's allocator (set PYTHONMALLOC to choose another).

    Python's own allocator hands memory back to the system only in 1 MiB arenas, and an arena
    goes back only once every object in it is gone: after a burst of 100,000 tasks, a few dozen
    small objects that outlive it (counters, the last timings) keep 20-40 MB of arenas alive.
    The C library's allocator gives back any free 4 KiB page when the center trims its heap
    after a big release, so the center returns to its idle size. The cost, a slower allocator,
    is a few percent of the center's throughput.
    """
    if os.environ.get("PYTHONMALLOC") or sys.flags.ignore_environment:
        return
    os.environ["PYTHONMALLOC"] = "malloc"
    try:
        os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])
    except OSError:
        del os.environ["PYTHONMALLOC"]  # run on as we are
