"""A large ``bytes`` value made from a buffer a step at a time, so that other threads run
meanwhile.

``bytes(<buffer>)`` is one call that holds the interpreter for the whole copy, and the pages
of a new value are faulted in as they are written: on a loaded machine a 1 GiB task argument
took 9.6 s to copy out of its frame on the worker's task thread, the worker's event loop sent
no heartbeat meanwhile, and the center removed it as silent. Copied 4 MiB at a time, the
interpreter is let go between steps (``time.sleep(0)``), and the loop's thread gets its turn.
"""
from __future__ import annotations

import functools
import io
import mmap
import pickle
import time
from collections.abc import Callable
from typing import Any

# Bytes copied at a time: a multiple of the page size.
STEP = 4 * 2**20
# From this size a ``bytes`` value is made in steps; below it one copy is short enough.
STEPPED = 4 * STEP


def copied_in_steps(buffer: Any, after_each: Callable[[int, int], None] | None = None) -> bytes:
    """The contents of ``buffer`` as one new ``bytes`` object, written in place a step at a
    time; ``after_each(start, stop)`` is called once each step is copied."""
    with memoryview(buffer) as view, view.cast("B") as source:
        size = source.nbytes
        # A ``bytes`` object that is a BytesIO's own (its only reference) is lent out writable
        # by ``getbuffer`` and handed back, uncopied, by ``getvalue``; ``bytes(size)`` is
        # calloc'd, so its pages cost memory only as they are written.
        holder = io.BytesIO(bytes(size))
        with holder.getbuffer() as target:
            _advise_huge_pages(target)
            for start in range(0, size, STEP):
                stop = min(size, start + STEP)
                target[start:stop] = source[start:stop]
                if after_each is not None:
                    after_each(start, stop)
                time.sleep(0)  # lets a waiting thread (the event loop's) have the interpreter
    return holder.getvalue()


_HUGE_PAGE = 2 * 2**20


def _advise_huge_pages(target: memoryview) -> None:
    """Ask for huge pages under the new value, as numpy does for its arrays and
    ``framing.frame_buffer`` for frames: a ``bytes`` object's memory is given back in one
    ``munmap`` that holds the interpreter, one 4 KiB page at a time -- 1 GiB freed in about a
    second on a loaded machine, the worker's loop waiting as the task that read it ended;
    0.01-0.04 s in 2 MiB pages."""
    madvise = _libc_madvise()
    if madvise is None:
        return
    import ctypes
    start = ctypes.addressof(ctypes.c_char.from_buffer(target))  # (the export let go at once)
    first = -(-start // _HUGE_PAGE) * _HUGE_PAGE
    last = (start + target.nbytes) // _HUGE_PAGE * _HUGE_PAGE
    if last > first:
        madvise(first, last - first, mmap.MADV_HUGEPAGE)  # (a refusal costs only the speed)


@functools.cache
def _libc_madvise() -> Callable[[int, int, int], int] | None:
    if not hasattr(mmap, "MADV_HUGEPAGE"):  # (Linux only)
        return None
    import ctypes
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def is_large(buffer: Any) -> bool:
    try:
        with memoryview(buffer) as view:
            return view.nbytes >= STEPPED
    except TypeError:  # not a buffer
        return False


# The one use of a private name of the standard library in dist, kept to this class. The C
# unpickler's opcodes cannot be overridden, and no public hook tells ``bytes`` called on a
# buffer from ``bytes`` the class as a value: ``find_class`` answers both alike (so the class
# a task receives as an argument would change), and a stand-in handed through ``buffers=``
# must give the buffer protocol, which a Python class can only from 3.12 (``__buffer__``).
# Python's own unpickler (``pickle._Unpickler``, which ``pickle`` keeps as its reference
# implementation) has an opcode table one can extend. Where an implementation lacks it,
# ``stepped_bytes_unpickler`` is None and such a pickle is read in one copy.
_PythonUnpickler: Any = getattr(pickle, "_Unpickler", None)


class _SteppedBytesUnpickler(_PythonUnpickler or object):  # type: ignore[misc]
    """An unpickler that makes ``bytes(<large buffer>)`` -- the pickle of a large ``bytes``
    value sent out of band (``serialize.bytes_out_of_band``) -- in steps. Python's own
    unpickler, not the C one, for its table of opcodes: only ``REDUCE`` changes, so a
    ``bytes`` class that is a value in the pickle (``submit(f, data, bytes)``) stays the class.
    Used only for a small pickle that comes with a large buffer: it is slower per opcode."""

    dispatch = dict(getattr(_PythonUnpickler, "dispatch", {}))
    stack: list[Any]  # (the Python unpickler's own)

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if func is bytes and len(args) == 1 and is_large(args[0]):
            stack[-1] = copied_in_steps(args[0])
        else:
            stack[-1] = func(*args)

    dispatch[pickle.REDUCE[0]] = load_reduce


# What reads a small pickle that comes with a large buffer, or None: read it in one copy.
stepped_bytes_unpickler: Callable[..., Any] | None = (
    _SteppedBytesUnpickler if _PythonUnpickler is not None else None)
