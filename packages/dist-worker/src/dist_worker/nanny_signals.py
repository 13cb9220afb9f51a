"""The nanny's signals, taken one at a time with who sent them.

Where the system has ``sigtimedwait`` (Linux), the nanny blocks SIGINT, SIGTERM and SIGCHLD
and takes them with it: each comes with the sender's process id, so the nanny can tell a
signal its own worker process sent (a task's ``os.kill(os.getppid(), SIGTERM)``) from its
operator's. Elsewhere (macOS has no ``sigtimedwait``) handlers queue them and wake the wait
through a pipe, and the sender is unknown (0): every SIGTERM is then the operator's.
"""
from __future__ import annotations

import os
import select
import signal
import time

WATCHED = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGCHLD})


class SignalInbox:
    """Made once in the nanny; ``in_child`` undoes it in each worker process it forks."""

    def __init__(self) -> None:
        self.waits = hasattr(signal, "sigtimedwait")
        self._got: list[int] = []
        self._wake = -1
        if self.waits:
            signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
            return
        self._wake, write = os.pipe()
        os.set_blocking(write, False)
        for number in WATCHED:
            signal.signal(number, self._queue)
        signal.set_wakeup_fd(write)

    def _queue(self, signum: int, frame: object) -> None:
        self._got.append(signum)

    def next(self, timeout: float | None = None) -> tuple[int, int] | None:
        """The next signal and its sender's process id (0: unknown); None if ``timeout``
        seconds passed without one (``None``: wait for as long as it takes)."""
        if self.waits:
            info = (signal.sigwaitinfo(WATCHED) if timeout is None
                    else signal.sigtimedwait(WATCHED, max(0.0, timeout)))
            return None if info is None else (info.si_signo, info.si_pid)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._got:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            ready, _, _ = select.select([self._wake], [], [], left)
            if ready:
                os.read(self._wake, 512)  # (the wake-up bytes; the handler queued the signal)
        return self._got.pop(0), 0

    def in_child(self) -> None:
        """In a forked worker process: its signals are its own again."""
        if self.waits:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
            return
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self._wake)


__all__ = ["SignalInbox", "WATCHED"]
