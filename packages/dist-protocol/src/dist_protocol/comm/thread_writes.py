"""The thread-side write path of a ``Comm``: for latency, a thread other than the loop's writes
a message to the socket itself when nothing is waiting to be written before it -- no wake-up of
the loop, no thread switch. It writes to a descriptor of its own (a duplicate), which the loop
closing the transport cannot free for another connection to reuse while a thread is about to
write to it. What a write leaves unwritten is kept for the loop, which writes it first.
"""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any


class ThreadWrites:
    """One comm's duplicate descriptor, the lock its writers and the loop's flushes take turns
    under, and what a thread's write left unwritten."""

    def __init__(self) -> None:
        # Sends from other threads and the loop's own flushes take turns here.
        self.lock = threading.Lock()
        self._fd: int | None = None  # a descriptor of the socket that other threads write to
        self._rest: list[Any] = []  # what a thread's write left unwritten, for the loop
        self.enabled = False  # other threads may write (a descriptor is theirs to write to)

    @property
    def has_rest(self) -> bool:
        return bool(self._rest)

    def start(self, transport: asyncio.BaseTransport) -> None:
        """On the loop: duplicate the transport's descriptor, if it is a plain socket's."""
        if self._fd is None:
            fd = socket_fd(transport)
            if fd is not None:
                self._fd = os.dup(fd)
                self.enabled = True

    def stop(self) -> None:
        with self.lock:
            fd, self._fd = self._fd, None
            self.enabled = False
        if fd is not None:
            os.close(fd)

    def write(self, buffers: list[Any]) -> bool:
        """With ``lock`` held and ``enabled``: write ``buffers`` now; False when some is left
        for the loop to write (``take_rest``)."""
        fd = self._fd
        assert fd is not None
        try:
            written = os.writev(fd, buffers)
        except OSError:  # (would block, or broken) the loop writes it and sees the error
            written = 0
        if len(buffers) == 1 and type(buffers[0]) is bytes and written == len(buffers[0]):
            return True  # (the usual small message: nothing left)
        self._rest = unwritten(buffers, written)
        return not self._rest

    def take_rest(self) -> list[Any]:
        """With ``lock`` held: what a thread's write left, to be written before anything else."""
        rest, self._rest = self._rest, []
        return rest


def unwritten(buffers: list[Any], written: int) -> list[Any]:
    """What is left of ``buffers`` after their first ``written`` bytes."""
    for i, buf in enumerate(buffers):
        view = memoryview(buf).cast("B")
        if written < view.nbytes:
            return [view[written:], *buffers[i + 1:]]
        written -= view.nbytes
    return []


def socket_fd(transport: asyncio.BaseTransport) -> int | None:
    """The descriptor another thread may write this transport's bytes to: a plain TCP or
    Unix socket's, not a TLS connection's (its bytes must pass through the TLS layer)."""
    if transport.get_extra_info("sslcontext") is not None \
            or transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    try:
        return None if sock is None else sock.fileno()
    except (OSError, AttributeError):
        return None
