"""Round six of ``misbehaving_tasks.py``'s probes: processes, descriptors, hooks, streams,
signals, the interpreter lock, recursion and results that do not pickle.

Each is a task's body, run by ``misbehaving_tasks.py PROBE`` as the probes of ``SETTINGS``
are (this module is pickled by value, so the workers need not import it).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _exit_in_a_thread():
    thread = threading.Thread(target=os._exit, args=(9,))
    thread.start()
    thread.join()


def _close_descriptors():
    for fd in range(3, 101):
        try:
            os.close(fd)
        except OSError:
            pass


def _exit_in_finally():
    try:
        return 1
    finally:
        sys.exit(4)


def _atexit_exit():
    import atexit

    atexit.register(sys.exit, 5)


def _sys_excepthook():
    def failing(*_):
        raise RuntimeError("a task's sys.excepthook")

    sys.excepthook = failing
    threading.excepthook = failing


def _stdout_closed_file():
    closed = open(os.devnull, "w")
    closed.close()
    sys.stdout = sys.stderr = closed
    return "closed"


def _print_after():
    print("a task prints")
    return "printed"


def _kill_loop_thread(signum: int):
    # (the worker's event loop runs on the process's main thread)
    signal.pthread_kill(threading.main_thread().ident or 0, signum)
    time.sleep(0.5)
    return signum


def _hold_the_interpreter_lock(seconds: float = 30.0):
    """A regular expression that backtracks for about ``seconds``, never releasing the lock."""
    import re

    pattern = re.compile(r"(a|aa)+$")
    # (each more character multiplies the work by the golden ratio: 1.6 a step)
    length, took = 20, 0.0
    while took < 0.2:
        length += 2
        start = time.perf_counter()
        pattern.match("a" * length + "b")
        took = time.perf_counter() - start
    while took < seconds:
        length += 1
        took *= 1.618
    start = time.perf_counter()
    pattern.match("a" * length + "b")
    return round(time.perf_counter() - start, 1)


def _recursion():
    def down(n):
        return down(n + 1) + 1

    return down(0)


def _recursion_limit_raised():
    sys.setrecursionlimit(10**6)
    return _recursion()


def _c_stack_overflow():
    sys.setrecursionlimit(10**6)
    nested: list = []
    for _ in range(10**6):
        nested = [nested]
    return len(repr(nested))


def _nested_result():
    sys.setrecursionlimit(10**6)
    nested: list = []
    for _ in range(10**6):
        nested = [nested]
    return nested


def _generator_result():
    return (i for i in range(3))


def _lock_result():
    return threading.Lock()


def _socket_result():
    import socket

    return socket.socket()


class _UnpicklableError(Exception):
    def __reduce__(self):
        raise RuntimeError("an exception that will not pickle")


class _RecursingError(Exception):
    def __reduce__(self):
        return (type(self), (self,))


def _raise_unpicklable():
    raise _UnpicklableError("the task's own error")


def _raise_recursing():
    raise _RecursingError("the task's own error")


PROBES = {"thread-os-exit": _exit_in_a_thread, "close-fds": _close_descriptors,
          "exit-in-finally": _exit_in_finally, "atexit-exit": _atexit_exit,
          "sys-excepthook": _sys_excepthook, "stdout-closed": _stdout_closed_file,
          "pthread-kill-usr1": lambda: _kill_loop_thread(signal.SIGUSR1),
          "pthread-kill-int": lambda: _kill_loop_thread(signal.SIGINT),
          "pthread-kill-term": lambda: _kill_loop_thread(signal.SIGTERM),
          "gil-30s": _hold_the_interpreter_lock, "recursion": _recursion,
          "recursion-raised": _recursion_limit_raised, "c-stack": _c_stack_overflow,
          "nested-result": _nested_result, "generator-result": _generator_result,
          "lock-result": _lock_result, "socket-result": _socket_result,
          "error-unpicklable": _raise_unpicklable, "error-recursing": _raise_recursing}
# Probes that may end their worker's process: not kept to the first worker, whose address a
# process the nanny starts again does not take, so that the future can fail as dask's would.
UNPINNED = {"thread-os-exit", "close-fds", "pthread-kill-usr1", "pthread-kill-int",
            "pthread-kill-term", "c-stack", "nested-result", "recursion-raised"}
# Run after the probe, on the same worker: what the probe left shows in the next task.
AFTER = {"stdout-closed": _print_after}
