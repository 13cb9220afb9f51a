"""Who sent a worker without a nanny its SIGTERM.

A Python signal handler does not learn who sent the signal, so a task's
``os.kill(os.getpid(), SIGTERM)`` looked like an operator's stop: the worker unregistered, the
task ran on the next worker and stopped it in turn, until no worker was left. Where the
system has ``sigwaitinfo`` (Linux), SIGTERM is blocked in the main thread (and so in the
threads it starts after) and taken by one thread that waits for it and learns the sender's
process id, as the nanny does (``nanny_signals``): this process, or one it started, is a
task's doing; anyone else is the operator, and so is a sender gone (and reaped) by the time
the watch looks: a task's short-lived ``kill $PPID`` may be taken for the operator's.

The threads that run tasks unblock it again (``let_this_thread_take_sigterm``): a signal mask
is passed on to the processes a thread starts, through ``exec`` too, and a task's child that
ignored ``Popen.terminate()`` or ``Pool.terminate()`` would hang its task. The kernel gives a
SIGTERM sent to the process to the first thread not blocking it, counting on from the thread
that took the last one: the watching thread, started before any other, whenever it waits. One
it did not take reaches the loop's handler as before: one sent to a task's thread by name
(``signal.raise_signal``), which only code in this process does.
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

# (the exit status of a process that SIGTERM ends, as a shell reports it)
_ENDED_BY_SIGTERM = 128 + signal.SIGTERM


class SigtermWatch:
    """Made in the worker process before any other thread; ``deliver_to`` says where the
    SIGTERMs go, each with whether this process or one below it sent it."""

    def __init__(self) -> None:
        self._deliver: Callable[[bool], None] | None = None
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        threading.Thread(target=self._watch, name="dist-sigterm-watch", daemon=True).start()

    @classmethod
    def start(cls) -> SigtermWatch | None:
        """A watch, where the system tells who sent a signal; None elsewhere."""
        return cls() if hasattr(signal, "sigwaitinfo") else None

    def deliver_to(self, deliver: Callable[[bool], None]) -> None:
        """Call ``deliver(own)``, on the watching thread, for each SIGTERM from now on."""
        self._deliver = deliver

    def _watch(self) -> None:
        while True:
            info = signal.sigwaitinfo({signal.SIGTERM})
            own = sent_from_here(info.si_pid)
            if self._deliver is None:  # (still starting: as the signal's default action)
                os._exit(_ENDED_BY_SIGTERM)
            self._deliver(own)


def sent_from_here(sender: int) -> bool:
    """Whether process ``sender`` is this one or one below it (a task's subprocess)."""
    here = os.getpid()
    if sender == here:
        return True
    import psutil  # (here, not at the top: a worker starts without it, see process_meter)

    try:
        return any(parent.pid == here for parent in psutil.Process(sender).parents())
    except psutil.Error:  # (gone already: nothing says it was ours)
        return False


def let_this_thread_take_sigterm() -> None:
    """On a thread that runs tasks: the processes it starts can be terminated (see above)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


__all__ = ["SigtermWatch", "let_this_thread_take_sigterm", "sent_from_here"]
