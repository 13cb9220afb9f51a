"""How many times this process was made by ``os.fork()`` from its parent's.

Code that must tell a forked copy of the worker from the worker reads ``count`` before and
after: a file of ``/proc/self`` opened before a fork, a task whose forked child came back from
the task's function into the worker's code. Comparing ``os.getpid()`` instead costs a system
call each time, several around every task.
"""
from __future__ import annotations

import os

count = 0


def _forked() -> None:
    global count
    count += 1


if hasattr(os, "register_at_fork"):  # (no fork where there is none)
    os.register_at_fork(after_in_child=_forked)
