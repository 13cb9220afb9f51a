"""A map's large keyword arguments, sent once as tasks of their own.

Every task of ``map(func, items, table=big)`` gets ``big``. Pickled into each task, it went
to the center and on to the workers once per task: a map of 40 with a 48 MB array held 1.9 GB
in the center (a map of 1,000 would have taken it past any memory). dask's ``map`` makes a
data node of each keyword argument over 100 kB, which its tasks read as an input; here it is
the result of a task of its own (``held_value``), which keeps lineage: lost with a worker, it
is computed again from the one copy the center holds.
"""
from __future__ import annotations

import uuid
from typing import Any, Protocol

from dist_protocol.held import held_value
from dist_protocol.serialize import serialize

from .future import Future
from .keys import tokenize
from .packing import pack

HELD_FROM = 100_000  # bytes pickled (dask's threshold, by its sizeof)
# Values that are never large enough, or are inputs already: not pickled to find out.
_PASSED_AS_THEY_ARE = frozenset({int, float, bool, complex, type(None), Future})


class Submitter(Protocol):
    """What holds a keyword's value: the client's submits (``core.submitting.Submitter``)."""

    def submit_many(self, func: Any, calls: list[tuple[str, tuple]], kwargs: dict,
                    options: dict, stacklevel: int = ..., refresh: bool = ...,
                    chunk_size: int = ..., warn: bool = ...) -> list[Future]: ...


def hold_large_keywords(submitter: Submitter, kwargs: dict, options: dict, pure: bool,
                        stacklevel: int) -> dict:
    """``kwargs`` with each value that pickles to ``HELD_FROM`` bytes or more replaced by the
    future of a task holding it (named after the keyword: ``table-<token>``, the same for the
    same value when ``pure``)."""
    held = kwargs
    for name, value in kwargs.items():
        kind = type(value)
        if kind in _PASSED_AS_THEY_ARE or kind in (str, bytes) and len(value) < HELD_FROM:
            continue
        try:
            nbytes = serialize(pack(value, {})).nbytes
        except Exception:  # noqa: BLE001 -- the map's own tasks report it, naming the argument
            continue
        if nbytes < HELD_FROM:
            continue
        key = f"{name}-{tokenize(value) if pure else uuid.uuid4().hex}"
        if held is kwargs:
            held = dict(kwargs)
        held[name] = submitter.submit_many(held_value, [(key, (value,))], {}, options,
                                           stacklevel + 1, warn=False)[0]
    return held


__all__ = ["HELD_FROM", "hold_large_keywords"]
