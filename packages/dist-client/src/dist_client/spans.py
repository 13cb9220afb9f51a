"""dask's ``span(*tags)``: name a group of tasks (nested spans make sub-spans), as
``distributed.span`` does.

The honest subset: the annotation and a way to read which tasks belong to a span, not
dask's per-span metrics (which dask's scheduler and workers measure; dist's center keeps no
such counts). Inside ``with span("load", "clean") as span_id:``

- ``dask.get_annotations()["span"]`` reads ``{"name": (..., "load", "clean"), "ids": (...)}``
  as in dask (when dask is installed: the block is also a ``dask.annotate`` block), and
  ``current_span()`` gives the same without dask;
- every task this process's executors send to the center (``submit``, ``map``, a dask
  collection's ``compute``/``persist``) is recorded, on the executor, as belonging to the
  span and to each span around it: ``Executor.span_keys(span_id)`` lists their keys, in the
  order sent (a key sent before is not sent again: it stays in the span it was first sent
  in). The record is the client's: the span is not sent to the center or the tasks.

A span id is a new UUID each time a block opens, as in dask: reopening a tag makes a new
span. The executor keeps the keys of each span it saw for its life (a key once per span).
"""
from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from dist_protocol.key_names import user_key


class Span(NamedTuple):
    name: tuple[str, ...]  # the tags of the spans around it and its own, outermost first
    ids: tuple[str, ...]  # a UUID per tag: the last is this span's id


_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("dist_span",
                                                                       default=None)


def current_span() -> Span | None:
    """The innermost open span of this thread (or asyncio task), if any."""
    return _current.get()


@contextlib.contextmanager
def span(*tags: str) -> Iterator[str]:
    """Tasks sent inside belong to a span named ``tags`` (under any enclosing span); yields
    the span's id. ``ValueError`` without a tag, as dask's."""
    if not tags:
        raise ValueError("Must specify at least one span tag")
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"a span's tags are strings, not {tag!r}")
    outer = _current.get()
    opened = Span((*(outer.name if outer else ()), *tags),
                  (*(outer.ids if outer else ()), *(str(uuid.uuid4()) for _ in tags)))
    token = _current.set(opened)
    try:
        with _dask_annotation(opened):
            yield opened.ids[-1]
    finally:
        _current.reset(token)


def _dask_annotation(opened: Span) -> Any:
    """dask's own record of the span, for code that reads ``dask.get_annotations()``."""
    module: Any = sys.modules.get("dask")
    if module is None:
        try:
            import dask as module
        except ImportError:
            return contextlib.nullcontext()
    return module.annotate(span={"name": opened.name, "ids": opened.ids})


class SpanKeys:
    """An executor's record of the keys sent inside each span (by span id)."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, None]] = {}
        self._lock = threading.Lock()

    def sent(self, keys: Iterable[str]) -> None:
        """Keys sent to the center now: of the open span (and those around it), if any."""
        opened = _current.get()
        if opened is None:
            return
        keys = list(keys)
        with self._lock:
            for span_id in opened.ids:
                self._keys.setdefault(span_id, {}).update(dict.fromkeys(keys))

    def keys(self, span_id: str) -> list[Any]:
        with self._lock:
            return [user_key(key) for key in self._keys.get(span_id, ())]


__all__ = ["Span", "SpanKeys", "current_span", "span"]
