"""The worker's standard descriptors stay its own when a task closes them.

A task that closes descriptor 1 or 2 (``os.close(1)``, or a library that daemonizes) leaves
their numbers free, and the kernel gives the lowest free number to the next descriptor the
process opens: a connection to a peer, say. Whatever is written to standard output or error
afterwards -- a task's ``print``, the worker's log -- then goes into that connection, which the
peer closes when the text breaks its framing; into a spill file, it would damage a value.

Checking the descriptors after each task costs a system call per task (two microseconds here,
against ten for a whole small task). Instead, ``os.close`` and ``os.closerange`` in the worker's
process put a standard descriptor they closed back at once, on what it was when the worker
started (or ``/dev/null``, if that is gone too): the number is never free for the next
descriptor. A descriptor closed from C (an extension's ``close()``) is not seen.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dist.worker")

STANDARD = (0, 1, 2)

_kept: dict[int, int] = {}  # standard descriptor -> a copy of what it was at the start
_close = os.close  # os's own, for the worker's


def keep_standard_descriptors() -> None:
    """From now on in this process, a standard descriptor closed through ``os`` is opened
    again on what it was. Once per process; later calls change nothing."""
    if _kept or getattr(os.close, "keeps_standard_descriptors", False):
        return
    for fd in STANDARD:
        try:
            _kept[fd] = os.dup(fd)  # (not inheritable: a child process gets its own 0-2)
        except OSError:
            _kept[fd] = -1  # closed already when the worker started: /dev/null then
    # (the parameters' names are os's: a keyword argument names the same descriptors)
    os.close = _putting_back(os.close, lambda fd: (fd,))
    os.closerange = _putting_back(
        os.closerange, lambda fd_low, fd_high: range(max(fd_low, 0), min(fd_high, len(STANDARD))))


def _putting_back(close: Callable[..., None],
                  standard_among: Callable[..., range | tuple[int]]) -> Callable[..., None]:
    @functools.wraps(close)
    def closing(*args: int, **kwargs: int) -> None:
        try:
            close(*args, **kwargs)
        finally:
            for fd in standard_among(*args, **kwargs):
                if fd in _kept:
                    _put_back(fd)

    closing.keeps_standard_descriptors = True  # type: ignore[attr-defined]
    return closing


def _put_back(fd: int) -> None:
    try:
        os.fstat(fd)
        return  # open (a close that failed, or opened again meanwhile by another thread)
    except OSError:
        pass
    try:
        os.dup2(_kept[fd], fd)
    except OSError:  # the copy was closed too (``os.closerange(3, ...)``)
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            _close(null)


# ``sys.stdout`` and ``sys.stderr`` as the last task left them, when they were usable: a task
# that closed the file it made ``sys.stdout`` (``with open(...) as sys.stdout``, or a closed
# file assigned) failed every later task that prints, on any thread, for the process's life.
# Checked by identity as each task ends (``streams_changed``), so that it costs a task two
# lookups; a stream a task replaced with an open one is left to it, as dask's workers do.
streams_seen: list[Any] = [sys.stdout, sys.stderr]


def streams_changed() -> bool:
    return sys.stdout is not streams_seen[0] or sys.stderr is not streams_seen[1]


def put_back_closed_streams(key: str) -> None:
    """After task ``key`` replaced ``sys.stdout`` or ``sys.stderr``: a closed one is put
    back on what it was before (or the process's own, or ``/dev/null``), with a warning."""
    for index, name in enumerate(("stdout", "stderr")):
        stream = getattr(sys, name)
        if not _closed(stream):
            streams_seen[index] = stream
            continue
        before = streams_seen[index]
        original = getattr(sys, f"__{name}__")
        if _closed(before):
            before = original if not _closed(original) else open(
                os.devnull, "w")
        setattr(sys, name, before)
        streams_seen[index] = before
        log.warning("task %s left sys.%s a closed file; it is put back, so that later tasks "
                    "can print", key, name)


def _closed(stream: Any) -> bool:
    try:
        return stream is not None and bool(stream.closed)
    except Exception:  # noqa: BLE001 -- a task's own stream object: whatever it says
        return False


__all__ = ["STANDARD", "keep_standard_descriptors", "put_back_closed_streams",
           "streams_changed"]
