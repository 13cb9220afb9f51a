"""Futures inside task arguments become ``KeyRef``s the worker replaces by their values."""
from __future__ import annotations

from typing import Any

from dist_protocol.serialize import KeyRef

from .future import Future

# Values that hold no future: a tuple of only these (most calls' arguments) is packed as it is.
ATOMS = frozenset({int, float, str, bytes, bool, type(None), complex})


def is_namedtuple(value: Any) -> bool:
    """A namedtuple's instance: dask reads the futures inside one, as inside a tuple."""
    return isinstance(value, tuple) and hasattr(type(value), "_make")


def pack(value: Any, deps: dict[str, Any]) -> Any:
    """``value`` with every Future (also inside lists, tuples, namedtuples, sets, dicts) made
    a ``KeyRef``.

    ``deps`` collects the futures found, by key, so the caller can declare the dependencies;
    a ``KeyRef`` already made (an input of a graph the caller holds no future for) is one too.
    """
    kind = type(value)
    if kind is Future:
        deps[value.name] = value
        return KeyRef(value.name)
    if kind is KeyRef:
        deps[value.key] = value
        return value
    if kind is list:
        return [pack(v, deps) for v in value]
    if kind is tuple:
        for v in value:
            if type(v) not in ATOMS:
                return tuple(pack(v, deps) for v in value)
        return value
    if kind is dict:
        return {k: pack(v, deps) for k, v in value.items()} if value else value
    if kind is set or kind is frozenset:
        return kind(pack(v, deps) for v in value)
    if is_namedtuple(value):
        return kind._make(pack(v, deps) for v in value)
    return value


def has_futures(value: Any) -> bool:
    if type(value) is Future:
        return True
    kind = type(value)
    if kind in (list, tuple, set, frozenset) or is_namedtuple(value):
        return any(has_futures(v) for v in value)
    if kind is dict:
        return any(has_futures(v) for v in value.values())
    return False


def collect_futures(structure: Any, found: list) -> None:
    """Every Future inside ``structure`` (lists, tuples, namedtuples, sets, dicts), in
    order."""
    if type(structure) is Future:
        found.append(structure)
        return
    kind = type(structure)
    if kind in (list, tuple, set, frozenset) or is_namedtuple(structure):
        for v in structure:
            if type(v) is Future:  # (a map's list: no call per future)
                found.append(v)
            else:
                collect_futures(v, found)
    elif kind is dict:
        for v in structure.values():
            collect_futures(v, found)


def rebuild(structure: Any, values: dict[str, Any]) -> Any:
    """``structure`` with each Future replaced by its value from ``values``."""
    kind = type(structure)
    if kind is Future:
        return values[structure.name]
    if kind is list:
        return [rebuild(v, values) for v in structure]
    if kind is tuple:
        return tuple(rebuild(v, values) for v in structure)
    if kind is dict:
        return {k: rebuild(v, values) for k, v in structure.items()}
    if kind is set or kind is frozenset:
        return kind(rebuild(v, values) for v in structure)
    if is_namedtuple(structure):
        return kind._make(rebuild(v, values) for v in structure)
    return structure


def without_missing(structure: Any, values: dict[str, Any]) -> Any:
    """``rebuild``, leaving out the futures whose key has no value (``errors="skip"``): from
    lists, tuples and sets, and from dicts by entry; a namedtuple keeps its fields (None
    for such a future)."""
    kind = type(structure)
    if kind is Future:
        return values[structure.name]
    if is_namedtuple(structure):
        return kind._make(values.get(v.name) if type(v) is Future
                          else without_missing(v, values) for v in structure)
    if kind in (list, tuple, set, frozenset):
        # (a future's value taken here: a map's list costs no call per future)
        items = [values[v.name] if type(v) is Future else without_missing(v, values)
                 for v in structure if type(v) is not Future or v.name in values]
        return items if kind is list else kind(items)
    if kind is dict:
        return {k: without_missing(v, values) for k, v in structure.items()
                if type(v) is not Future or v.name in values}
    return structure


def futures_of(value: Any) -> list[Future]:
    """The futures in ``value``, as dask.distributed's ``futures_of``: ``value`` itself, those
    inside lists, tuples, sets and dicts, and those a dask collection's graph holds (a
    persisted collection's); each once, in the order found."""
    found: dict[int, Future] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Future):
            found.setdefault(id(item), item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(reversed(list(item)))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif hasattr(item, "__dask_graph__") and callable(item.__dask_graph__):
            stack.extend(reversed(list(dict(item.__dask_graph__()).values())))
    return list(found.values())

