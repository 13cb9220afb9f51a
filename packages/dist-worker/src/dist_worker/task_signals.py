"""Signals a task arranges for its own process, which the worker process survives.

A task runs in the worker's process, and some signals it can bring on itself end a process by
default: ``signal.alarm(n)`` or ``signal.setitimer`` (SIGALRM, SIGVTALRM, SIGPROF, fired after
the task returned), ``os.kill(os.getpid(), SIGUSR1)``, a write past ``RLIMIT_FSIZE`` (SIGXFSZ).
A task cannot install a handler of its own (only the main thread can, and tasks run on the
pool's), so each such signal killed the worker with every task it ran and every result it
held. The worker catches those it does not use itself, on its event loop: the signal is
counted and logged, and the stories of the tasks that may have caused it say so.

Not caught: SIGTERM and SIGINT (they stop the worker, see ``cli.serve``), SIGQUIT (a user
asking for a core dump), SIGXCPU (an operator's CPU limit), faults (SIGSEGV, SIGBUS, SIGABRT)
and SIGKILL/SIGSTOP, which no process can catch. SIGHUP is caught only under a nanny: a
terminal's hangup reaches the nanny as well, which ends and takes its worker with it, while
a worker without one must still end with its terminal. SIGPIPE is ignored by Python already.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable
from typing import Any

from _signal import getsignal as _getsignal  # (signal's own wraps it in an enum conversion)

# (getattr: not every platform has each of them)
_SURVIVED = ("SIGALRM", "SIGVTALRM", "SIGPROF", "SIGUSR1", "SIGUSR2", "SIGXFSZ", "SIGIO")


def survived_signals(nanny: bool) -> list[signal.Signals]:
    """The signals the worker process survives: with ``nanny``, SIGHUP as well."""
    names = (*_SURVIVED, "SIGHUP") if nanny else _SURVIVED
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def survive_signals(loop: asyncio.AbstractEventLoop, signals: list[signal.Signals],
                    on_signal: Callable[[str], None]) -> None:
    """Call ``on_signal(name)`` on ``loop`` for each of ``signals`` the process gets, rather
    than let it end the process."""
    for number in signals:
        loop.add_signal_handler(number, on_signal, signal.Signals(number).name)


def disarm_timers() -> None:
    """Cancel the interval timers a task left armed (``signal.alarm``, ``setitimer``), as
    the event loop that survives their signals ends: past it, each signal has its default
    action again, and a timer repeating every second ended a stopping worker by SIGALRM
    (exit -14), before it removed its spill files or ended the processes its tasks left."""
    for which in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
        signal.setitimer(which, 0)


def ignore_signals(signals: list[signal.Signals]) -> None:
    """Ignore ``signals`` from now on: the event loop that survived them has closed, and the
    worker only ends now (a task's child may still send one)."""
    for number in signals:
        signal.signal(number, signal.SIG_IGN)


class KeptHandlers:
    """The worker's handlers of ``numbers`` as they are now, put back where a task replaced
    them.

    A fast function runs inline, on the event loop's thread, which is the main thread: there,
    and only there, ``signal.signal`` works (on a pool thread, as in dask's workers, it raises
    ``ValueError``). So such a task could replace the worker's own handlers: a SIGTERM or
    Ctrl-C ignored stopped nothing, one of the survived signals set back to its default ended
    the process. Checked once per stretch of inline runs, not per task: ten look-ups cost
    about a tenth of a trivial task's run (benchmarks/README.md, round four)."""

    def __init__(self, numbers: Iterable[int]):
        # (None: a handler not installed from Python, which could not be put back)
        self._kept: list[tuple[int, Any]] = [
            (number, handler) for number in numbers
            if (handler := _getsignal(number)) is not None]

    def put_back(self) -> list[str]:
        """Put back each handler replaced since; the names of their signals."""
        replaced = []
        for number, handler in self._kept:
            if _getsignal(number) is not handler:
                signal.signal(number, handler)
                replaced.append(signal.Signals(number).name)
        return replaced


__all__ = ["KeptHandlers", "disarm_timers", "ignore_signals", "survive_signals",
           "survived_signals"]
