"""Deterministic keys: ``funcname-<32 hex>`` from the function, its arguments and keywords."""
from __future__ import annotations

import hashlib
import pickle
import uuid
from typing import Any

import cloudpickle

from .future import Future

_ATOMS = frozenset({int, float, str, bytes, bool, complex, type(None)})


def funcname(func: Any) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "<lambda>":
        return "lambda"
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name) or "task"


def _normalize(value: Any, depth: int = 0) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is Future:
        return ("__future__", value.key)
    if depth > 50:
        raise ValueError("structure too deep to tokenize")
    if kind is tuple or kind is list:
        for item in value:
            if type(item) not in _ATOMS:
                return (kind.__name__, tuple(_normalize(v, depth + 1) for v in value))
        return (kind.__name__, tuple(value))  # the usual arguments: atoms only
    if kind is dict:
        return ("dict", tuple(sorted(((_normalize(k, depth + 1), _normalize(v, depth + 1))
                                      for k, v in value.items()), key=repr)))
    if kind in (set, frozenset):
        return (kind.__name__, tuple(sorted((_normalize(v, depth + 1) for v in value), key=repr)))
    nbytes = getattr(value, "nbytes", None)
    if nbytes is not None and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        digest = hashlib.md5(memoryview(value).cast("B") if value.flags.c_contiguous
                             else value.tobytes()).hexdigest()
        return ("ndarray", str(value.dtype), value.shape, digest)
    return ("pickle", _pickled(value))


def _pickled(value: Any) -> bytes:
    try:
        data = pickle.dumps(value, protocol=5)
        if b"__main__" not in data:
            return data
    except Exception:  # noqa: BLE001 -- cloudpickle handles lambdas, closures and __main__
        pass
    return cloudpickle.dumps(value, protocol=5)


def function_token(func: Any) -> Any:
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if module and qualname and module != "__main__" and "<" not in qualname:
        return ("func", module, qualname)
    try:
        return ("pickle", _pickled(func))
    except Exception:  # noqa: BLE001 -- sending it fails later, with an error that names it
        return ("unique", uuid.uuid4().hex)


def tokenize(*parts: Any) -> str:
    """32 hex digits that are equal for equal inputs; unique when something cannot be hashed."""
    try:
        return _digest(tuple(_normalize(p) for p in parts))
    except Exception:  # noqa: BLE001 -- an unhashable input gets a unique key
        return uuid.uuid4().hex


def _digest(normalized: tuple) -> str:
    return hashlib.md5(pickle.dumps(normalized, protocol=5)).hexdigest()


def map_keys(func: Any, argsets: list[tuple], kwargs: dict, key: str | list[str] | None,
             pure: bool) -> list[str]:
    """The keys of ``map``: the ones given (a list, one per call), else ``prefix-token`` per
    call (``key`` is the prefix; the function's name by default), unique when not pure."""
    if isinstance(key, list):
        if len(key) != len(argsets):
            raise ValueError(f"map got {len(key)} keys for {len(argsets)} tasks")
        return list(key)
    if not pure:
        name = funcname(func)
        return [f"{name}-{uuid.uuid4().hex}" for _ in argsets]
    prefix = key or funcname(func)
    ftoken = function_token(func)
    try:  # what every call shares is normalized once: the same keys as ``tokenize``'s
        shared_function, shared_keywords = _normalize(ftoken), _normalize(kwargs)
    except Exception:  # noqa: BLE001 -- an unhashable input gets a unique key
        return [f"{prefix}-{uuid.uuid4().hex}" for _ in argsets]
    return [f"{prefix}-{_call_token(shared_function, args, shared_keywords)}" for args in argsets]


def _call_token(function: Any, args: tuple, keywords: Any) -> str:
    try:
        return _digest((function, _normalize(args), keywords))
    except Exception:  # noqa: BLE001 -- an unhashable input gets a unique key
        return uuid.uuid4().hex


def data_key(value: Any, hash: bool = True) -> str:
    """The key of scattered data: by its content, or unique (``hash=False``)."""
    token = tokenize(value) if hash else uuid.uuid4().hex
    return f"{funcname(type(value))}-{token}"


def task_key(func: Any, args: tuple, kwargs: dict, pure: bool = True) -> str:
    if not pure:
        return f"{funcname(func)}-{uuid.uuid4().hex}"
    return f"{funcname(func)}-{tokenize(function_token(func), args, kwargs)}"
