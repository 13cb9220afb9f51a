"""Round seven of ``misbehaving_tasks.py``'s probes: the interpreter lock held in C code, and
process-wide state a task changes (the working directory, the environment, ``sys.path``, the
switch interval), read by the next task on the same worker.

Each is a task's body, run by ``misbehaving_tasks.py PROBE`` as the probes of ``SETTINGS``
are (this module is pickled by value, so the workers need not import it).
"""
from __future__ import annotations

import os
import sys
import time


def _hold_the_interpreter_lock_in_c(seconds: float = 12.0) -> float:
    """C calls only until the deadline: no bytecode runs, so no other thread of the process
    (the event loop's heartbeats) runs either; burns a core meanwhile."""
    start = time.monotonic()
    deadline = start + seconds
    any(map(deadline.__lt__, iter(time.monotonic, None)))
    return round(time.monotonic() - start, 1)


def _chdir() -> str:
    os.chdir("/")
    return os.getcwd()


def _environ_set() -> str:
    os.environ["DIST_PROBE_LEFT"] = "by a task"
    return "set"


def _sys_path_insert() -> str:
    sys.path.insert(0, "/nonexistent/left-by-a-task")
    return "inserted"


def _switch_interval() -> float:
    sys.setswitchinterval(100.0)
    return sys.getswitchinterval()


def _cwd_after() -> str:
    return os.getcwd()


def _environ_after() -> str | None:
    return os.environ.get("DIST_PROBE_LEFT")


def _sys_path_after() -> str:
    return sys.path[0]


def _switch_interval_after() -> float:
    return sys.getswitchinterval()


PROBES = {"gil-in-c-12s": _hold_the_interpreter_lock_in_c, "chdir": _chdir,
          "environ-set": _environ_set, "sys-path-insert": _sys_path_insert,
          "switch-interval": _switch_interval}
# Run after the probe, on the same worker: what the probe left shows in the next task.
AFTER = {"chdir": _cwd_after, "environ-set": _environ_after,
         "sys-path-insert": _sys_path_after, "switch-interval": _switch_interval_after}
