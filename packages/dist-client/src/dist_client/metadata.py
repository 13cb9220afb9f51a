"""``Executor.set_metadata``/``get_metadata``: small values shared by every client of the
cluster under a key or a path of keys, as dask's client keeps them on its scheduler.

Each top-level key is a Variable on the center (so the values travel as any Variable's
do), changed under a Lock of its own: setting a path inside it reads the value, sets the
path and writes it back, which two clients must not do at once. ``AsyncExecutor`` has the
same as coroutines.
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


def _lock(executor: Any, top: Any) -> Lock:
    return Lock(f"metadata-lock:{given_key(top)}", executor=executor)


def _with_value_set(top: Any, path: list, value: Any) -> Any:
    """The top-level value with ``value`` under ``path`` (its first key: the top's own),
    nested dicts made where missing."""
    if len(path) == 1:
        return value
    top = top if isinstance(top, dict) else {}
    inner = top
    for key in path[1:-1]:
        if not isinstance(inner.get(key), dict):
            inner[key] = {}
        inner = inner[key]
    inner[path[-1]] = value
    return top


def _found(top: Any, path: list, keys: Any, default: Any) -> Any:
    value = top
    for key in path[1:]:
        if value is NO_DEFAULT:
            break
        value = value.get(key, NO_DEFAULT) if isinstance(value, dict) else NO_DEFAULT
    if value is NO_DEFAULT:
        if default is NO_DEFAULT:
            raise KeyError(f"no metadata under {keys!r}")
        return default
    return value


def _stored(variable: Variable) -> Any:
    try:
        return variable.get(timeout=0)
    except timeouts.TimeoutError:
        return NO_DEFAULT


async def _stored_async(variable: Variable) -> Any:
    try:
        return await variable.get(timeout=0)
    except timeouts.TimeoutError:
        return NO_DEFAULT


def set_metadata(executor: Any, keys: Any, value: Any) -> None:
    """Keep ``value`` under ``keys`` (a key, or a list of keys naming nested dicts, which
    are made where missing)."""
    path = _path(keys)
    variable = _variable(executor, path[0])
    with _lock(executor, path[0]):
        top = _stored(variable) if len(path) > 1 else NO_DEFAULT
        variable.set(_with_value_set(top, path, value))


def get_metadata(executor: Any, keys: Any, default: Any = NO_DEFAULT) -> Any:
    """The value under ``keys`` (a list or a tuple is a path, as dask reads it); ``default``
    if there is none (``KeyError`` without one)."""
    path = _path(keys, tuple_too=True)
    return _found(_stored(_variable(executor, path[0])), path, keys, default)


async def set_metadata_async(executor: Any, keys: Any, value: Any) -> None:
    path = _path(keys)
    variable = _variable(executor, path[0])
    async with _lock(executor, path[0]):
        top = await _stored_async(variable) if len(path) > 1 else NO_DEFAULT
        await variable.set(_with_value_set(top, path, value))


async def get_metadata_async(executor: Any, keys: Any, default: Any = NO_DEFAULT) -> Any:
    path = _path(keys, tuple_too=True)
    return _found(await _stored_async(_variable(executor, path[0])), path, keys, default)


__all__ = ["get_metadata", "get_metadata_async", "set_metadata", "set_metadata_async"]
