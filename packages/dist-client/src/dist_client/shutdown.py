"""Shutting an Executor down the way ``concurrent.futures`` executors shut down.

* ``shutdown(wait=True)`` (and leaving ``with Executor(...)``) refuses new work, waits for the
  futures still held, keeps their results readable, then closes.
* ``shutdown(wait=False)`` returns at once; the same happens on a thread of its own, which
  the interpreter waits for at exit, so submitted work is never dropped silently.
* ``shutdown(cancel_futures=True)`` cancels the tasks that have not started; running ones
  finish.
* At interpreter exit every open Executor is shut down with ``wait=True`` before ``atexit``
  hooks run (as ``concurrent.futures`` does), so a submit from such a hook raises
  ``RuntimeError``; unless the program ended on Ctrl-C, or Ctrl-C stops that wait: then
  they close, cancelling what is not done, as the user asked to stop.

Results are kept in the client only up to ``KEEP_RESULTS`` bytes in all (small results already
are); the rest cannot be read after the shutdown, and say so.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from typing import Any

from .errors import ExecutorClosedError

# What is shut down here is the client's core (``core.client.ClientCore``), which every
# facade of one client shares: its status, ``accepting``, ``cancelling``,
# ``keep_results()``, ``close()`` and ``shutdown()``.
Executor = Any

KEEP_RESULTS = 512 * 2**20

_open: weakref.WeakSet = weakref.WeakSet()
_interpreter_exiting = False


def track(executor: Executor) -> None:
    """Shut ``executor`` down at interpreter exit if it is still open then."""
    _open.add(executor)


def untrack(executor: Executor) -> None:
    """Do not wait for ``executor``'s futures at interpreter exit (an executor a worker's
    tasks share: what it holds belongs to tasks that end with the process)."""
    _open.discard(executor)


def refused(executor: Executor) -> ExecutorClosedError:
    """The error for new work after a shutdown (a ``RuntimeError``, as in cf)."""
    when = "interpreter shutdown" if _interpreter_exiting else "shutdown"
    return ExecutorClosedError(f"cannot schedule new futures after {when}: the executor for "
                               f"{executor.address} is {executor.status}, and it takes no "
                               "new work")


def shut(executor: Executor, wait: bool, cancel_futures: bool) -> None:
    if executor.status != "running":
        executor.close()
        return
    executor.accepting = False
    if cancel_futures:
        executor.cancelling.cancel_unstarted()
    if wait:
        finish(executor)
    else:
        # Not a daemon: the interpreter waits for it at exit, so the work still completes.
        threading.Thread(target=finish, args=(executor,), name="dist-client-shutdown").start()


def finish(executor: Executor) -> None:
    """Wait for the held futures, keep their results, close."""
    try:
        executor.keep_results(KEEP_RESULTS)
    finally:
        executor.close()


def _at_exit() -> None:
    global _interpreter_exiting
    _interpreter_exiting = True
    # (the process they were opened in waits for their work, not a forked child)
    executors = [executor for executor in list(_open) if not executor.in_forked_child()]
    if _ended_on_ctrl_c():
        # The user stopped the program: waiting for its work now (which may never end: it was
        # likely what the program waited for) would take a second Ctrl-C.
        _close_without_waiting(executors, "the program was interrupted")
        return
    try:
        for executor in executors:
            try:
                executor.shutdown(wait=True)
            except Exception:  # noqa: BLE001 -- one broken executor must not keep others open
                pass
    except KeyboardInterrupt:
        # Ctrl-C while the exit waits for work that may never end (a task asking for what no
        # worker has, a cluster left without workers): the user stops waiting.
        _close_without_waiting(executors, "interrupted while waiting at exit")


def _ended_on_ctrl_c() -> bool:
    """Whether the program (not an interactive session) ended on a KeyboardInterrupt."""
    if hasattr(sys, "ps1"):  # (there, the last error may be any earlier line's)
        return False
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return isinstance(last, KeyboardInterrupt)


def _close_without_waiting(executors: list[Executor], why: str) -> None:
    """Close ``executors``, cancelling what is not done, and say so in a line rather than in
    a traceback of the interpreter's shutdown."""
    pending = 0
    for executor in executors:
        with contextlib.suppress(Exception):
            pending += executor.pending_count()
            executor.close()
    if pending:
        print(f"dist: {why}: {pending} futures not done were cancelled as their executors "
              "closed", file=sys.stderr)


# Runs when the main thread ends, before atexit hooks and before the non-daemon threads are
# joined: concurrent.futures registers its executors' shutdown the same way.
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]  # private, as there

__all__ = ["KEEP_RESULTS", "finish", "refused", "shut", "track", "untrack"]
