"""The event loop and process settings the command-line tools and clients start with."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
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
    """For the center's and workers' own processes; clients leave the user's settings alone.

    What the process holds by now (its modules, its options) lives as long as it does: frozen,
    it is left out of every later pass of the collector, and a worker forked from its nanny
    does not write to the pages it shares with it by passing over them. The collector is
    turned on, for an entry point that turns it off while the program imports its modules
    (``dcenter``'s), where it would pass over them again and again and find nothing to free.
    """
    import gc

    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
    gc.enable()


def run(main: Coroutine[Any, Any, Any],
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = new_event_loop) -> object:
    """``asyncio.run(main)`` on a loop ``loop_factory`` makes (uvloop's when installed)."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    # Python 3.10's asyncio.run takes no loop: the same steps, on ours.
    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        # gather() of nothing asks for the thread's current loop, which a worker's inline
        # tasks leave unset: on a stop, Python 3.10's RuntimeError ("There is no current
        # event loop") made the worker exit 1.
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler({"message": "unhandled exception during shutdown",
                                         "exception": task.exception(), "task": task})
