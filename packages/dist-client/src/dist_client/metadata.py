"""``Executor.set_metadata``/``get_metadata``: small values shared by every client of the
cluster under a key or a path of keys, as dask's client keeps them on its scheduler.

Each top-level key is a Variable on the center (so the values travel as any Variable's
do), changed under a Lock of its own: setting a path inside it reads the value, sets the
path and writes it back, which two clients must not do at once.
"""
from __future__ import annotations

from typing import Any

from dist_protocol import timeouts

from .keys import given_key
from .primitives import Lock, Variable

NO_DEFAULT = object()


def _path(keys: Any, tuple_too: bool = False) -> list:
    """The keys of a path: a list of them (or a tuple, ``tuple_too``), or a key alone."""
    path = list(keys) if isinstance(keys, list) or tuple_too and isinstance(keys, tuple) \
        else [keys]
    if not path:
        raise ValueError("set_metadata and get_metadata need a key, or a non-empty list of keys")
    given_key(path[0])  # (a TypeError for what cannot name it)
    return path


def _variable(executor: Any, top: Any) -> Variable:
    return Variable(f"metadata:{given_key(top)}", executor=executor)


def _stored(variable: Variable) -> Any:
    try:
        return variable.get(timeout=0)
    except timeouts.TimeoutError:
        return NO_DEFAULT


def set_metadata(executor: Any, keys: Any, value: Any) -> None:
    """Keep ``value`` under ``keys`` (a key, or a list of keys naming nested dicts, which
    are made where missing)."""
    path = _path(keys)
    variable = _variable(executor, path[0])
    with Lock(f"metadata-lock:{given_key(path[0])}", executor=executor):
        if len(path) == 1:
            variable.set(value)
            return
        top = _stored(variable)
        top = top if isinstance(top, dict) else {}
        inner = top
        for key in path[1:-1]:
            if not isinstance(inner.get(key), dict):
                inner[key] = {}
            inner = inner[key]
        inner[path[-1]] = value
        variable.set(top)


def get_metadata(executor: Any, keys: Any, default: Any = NO_DEFAULT) -> Any:
    """The value under ``keys`` (a list or a tuple is a path, as dask reads it); ``default``
    if there is none (``KeyError`` without one)."""
    path = _path(keys, tuple_too=True)
    value = _stored(_variable(executor, path[0]))
    for key in path[1:]:
        if value is NO_DEFAULT:
            break
        value = value.get(key, NO_DEFAULT) if isinstance(value, dict) else NO_DEFAULT
    if value is NO_DEFAULT:
        if default is NO_DEFAULT:
            raise KeyError(f"no metadata under {keys!r}")
        return default
    return value


__all__ = ["get_metadata", "set_metadata"]
