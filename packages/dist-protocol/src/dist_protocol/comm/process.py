"""The event loop and process settings the command-line tools and clients start with."""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed, else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; returns the soft limit.

    Every connection holds a file descriptor: at the common default of 1024, a server would stop
    accepting anyone after that many idle or hostile connections.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is not a valid soft limit everywhere (macOS caps it at OPEN_MAX).
    targets = [hard] if hard != resource.RLIM_INFINITY else [2**20, 10240]
    for target in targets:
        if soft != resource.RLIM_INFINITY and target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            continue
    return soft


# Young-generation collections every 50,000 allocations rather than 700: a server holding
# 100,000 tasks allocates in bursts of mostly long-lived objects, and with the default the
# collector's passes over them cost it 40% of its throughput.
SERVER_GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """For the center's and workers' own processes; clients leave the user's settings alone."""
    import gc

    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def run(main: Coroutine[Any, Any, Any]) -> object:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
