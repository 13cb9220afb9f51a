"""Processes that a worker's tasks started and left running end with the worker.

A task may start a subprocess and return without waiting for it, or with a process of its own
session (``start_new_session=True``) that no signal to the worker's group reaches. Left alone,
such processes outlive the worker: a local cluster's ``close()`` or a stopped ``dworker``
would leave them running, and every restart of a worker that died would add more. So, as Ray
does with a worker's children, they are ended when the worker process ends: the nanny becomes
the parent of whatever its worker leaves behind (a Linux "child subreaper") and ends those
processes before it starts the next worker or exits; a worker without a nanny ends the
processes below it on its way out. (Adopted processes that end while the worker runs -- a
task's ``sleep 60 &``, whose shell exited at once -- are reaped by the nanny's wait.)
"""
from __future__ import annotations

import sys

GRACE = 3.0  # seconds between SIGTERM and SIGKILL
PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Become the parent of the processes a child of this process leaves running when it
    ends (they would otherwise go to init, out of reach)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def end_leftover_processes(grace: float = GRACE) -> list[str]:
    """End every process below this one: SIGTERM, then SIGKILL for those still there after
    ``grace`` seconds; each is reaped. Returns what was ended (``"PID (NAME)"``), not
    counting processes that had exited already (reaped only)."""
    import psutil  # (not at start-up: only a worker on its way out needs it)

    try:
        below = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    ended = []
    for process in below:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                ended.append(f"{process.pid} ({process.name()})")
            process.terminate()
        except psutil.Error:  # gone meanwhile
            pass
    _, alive = psutil.wait_procs(below, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)
    return ended


def end_leftovers() -> None:
    """``end_leftover_processes``, saying on stderr what it ended."""
    ended = end_leftover_processes()
    if ended:
        try:  # (in a worker without a nanny, a task may have closed or replaced stderr)
            print(f"dworker: ended {len(ended)} process(es) that the worker's tasks left "
                  f"running: {', '.join(ended)}", file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 -- on the way out, nothing is left to tell
            pass


__all__ = ["adopt_orphans", "end_leftover_processes", "end_leftovers"]
