"""A large ``bytes`` value made from a buffer a step at a time, so that other threads run
meanwhile.

``bytes(<buffer>)`` is one call that holds the interpreter for the whole copy, and the pages
of a new value are faulted in as they are written: on a loaded machine a 1 GiB task argument
took 9.6 s to copy out of its frame on the worker's task thread, the worker's event loop sent
no heartbeat meanwhile, and the center removed it as silent. Copied 4 MiB at a time, the
interpreter is let go between steps (``time.sleep(0)``), and the loop's thread gets its turn.
"""
from __future__ import annotations

import ctypes
import functools
import io
import mmap
import pickle
import pickletools
import sys
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
        if func is bytes and len(args) == 1 and type(args[0]) is not bytes \
                and is_large(args[0]):
            stack[-1] = copied_in_steps(args[0])
        else:
            stack[-1] = func(*args)

    dispatch[pickle.REDUCE[0]] = load_reduce


# What reads a small pickle that comes with a large buffer, or None: read it in one copy.
stepped_bytes_unpickler: Callable[..., Any] | None = (
    _SteppedBytesUnpickler if _PythonUnpickler is not None else None)


# Where a ``bytes`` object's contents begin within it (CPython's layout: the header, then the
# bytes); checked once at import (``_fill_works``).
_CONTENTS_AT = bytes.__basicsize__ - 1


def bytes_to_fill(length: int) -> tuple[bytes, memoryview] | None:
    """A new ``bytes`` object of ``length`` bytes and a writable view of its contents, for a
    frame to be received straight into the value it will be: a large ``bytes`` value then
    never exists twice (its frame, then a copy), neither as it arrives nor as a task reads
    it. The object must not be handed to anyone before it is filled. ``bytes(length)`` is
    calloc'd: its pages cost memory only as bytes arrive. None where the layout is not
    CPython's, and for fewer than two bytes (CPython's shared ``b""`` and one-byte values)."""
    if not _FILL_WORKS or length < 2:
        return None
    value = bytes(length)
    contents = memoryview((ctypes.c_char * length).from_address(id(value) + _CONTENTS_AT))
    target = contents.cast("B")
    if length >= STEPPED:
        _advise_huge_pages(target)  # (freed in one go, as ``copied_in_steps``'s values)
    return value, target


def _fill_works() -> bool:
    if sys.implementation.name != "cpython":
        return False
    try:
        value = bytes(4)
        memoryview((ctypes.c_char * 4).from_address(id(value) + _CONTENTS_AT)).cast("B")[:] \
            = b"dist"
        return value == b"dist"
    except (TypeError, ValueError):
        return False


_FILL_WORKS = _fill_works()

# The opcodes a pickle ``bytes(<out-of-band buffer>)`` is written with (``serialize``'s
# ``bytes_out_of_band``): the callable, then the buffer, a tuple of one, the call.
_SKIPPED = frozenset({"MEMOIZE", "READONLY_BUFFER", "FRAME"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def bytes_arguments(head: bytes) -> frozenset[int]:
    """The out-of-band buffers (their positions, from 0) that the pickle ``head`` passes
    straight to ``bytes(...)``: those a reader may hand over as they are when they arrive as
    ``bytes`` objects (``bytes(x)`` of a ``bytes`` object is the object itself). Empty for
    what cannot be read as a pickle."""
    try:
        ops: list[tuple[str, Any]] = [(op.name, arg) for op, arg, _ in pickletools.genops(head)]
    except Exception:  # noqa: BLE001 -- not a pickle: nothing to hand over
        return frozenset()
    found: set[int] = set()
    memo_of_bytes: set[int] = set()
    strings: list[Any] = [None, None]
    memo_size = 0
    buffers = 0
    pushed_bytes = False  # the last op that pushed something pushed the ``bytes`` type
    for at, (name, arg) in enumerate(ops):
        if name == "MEMOIZE":
            if pushed_bytes:
                memo_of_bytes.add(memo_size)
            memo_size += 1
            continue
        if name in _PUTS:
            if pushed_bytes:
                memo_of_bytes.add(arg)
            continue
        if name in _SKIPPED:
            continue
        if name == "NEXT_BUFFER":
            if pushed_bytes and _called_alone(ops, at + 1):
                found.add(buffers)
            buffers += 1
        if name == "STACK_GLOBAL":
            pushed_bytes = strings == ["builtins", "bytes"]
        elif name in _GETS:
            pushed_bytes = arg in memo_of_bytes
        else:
            pushed_bytes = False
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings = [strings[1], arg]
    return frozenset(found)


def _called_alone(ops: list[tuple[str, Any]], at: int) -> bool:
    """Whether the ops from ``at`` make a tuple of the one thing pushed and call with it."""
    following = [name for name, _ in ops[at:at + 6] if name not in _SKIPPED]
    return following[:2] == ["TUPLE1", "REDUCE"]


def received_as_bytes(frames: list[Any]) -> bool:
    """Whether the frame after ``frames`` (a batch's frames received so far) is a buffer that
    a pickle among them passes to ``bytes(...)``: one to receive straight into a ``bytes``
    object (``bytes_to_fill``). A payload's frames travel together, its pickle first; a wrong
    guess costs only a copy where the frame is read (``serialize._writeable``)."""
    for at in range(len(frames) - 1, 0, -1):  # (frame 0 is the batch's messages)
        frame = frames[at]
        if type(frame) is bytes and frame[:2] == b"\x80\x05" and len(frame) <= _HEAD_AT_MOST:
            return len(frames) - at - 1 in bytes_arguments(frame)
    return False


# The largest pickle looked into for the buffers it passes to ``bytes`` (a task's call with
# its small arguments, or a value holding large ``bytes`` values).
_HEAD_AT_MOST = 64 * 2**10
