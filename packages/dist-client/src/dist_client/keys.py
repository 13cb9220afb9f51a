"""Deterministic keys: ``funcname-<32 hex>`` from the function, its arguments and keywords."""
from __future__ import annotations

import functools
import hashlib
import numbers
import pickle
import types
import uuid
from typing import Any

import cloudpickle
from dist_protocol.key_names import MAY_NEED_ESCAPE, wire_key

from .code_tokens import function_parts, travels_by_value
from .script_module import SCRIPT_MODULES
from .future import Future

try:  # Python's own MD5: for the few bytes of a call, OpenSSL's set-up costs more than the hash
    from _md5 import md5 as _md5
except ImportError:  # an interpreter built without it
    _md5 = hashlib.md5

_ATOMS = frozenset({int, float, str, bytes, bool, complex, type(None)})
_ATOMS_BUT_BYTES = _ATOMS - {bytes}
# From this size a buffer is hashed with XXH3 (some 6 GB/s) rather than pickled and hashed with
# MD5 (0.5 GB/s, and a copy of the value): 2 s for 1 GiB before. Smaller values keep the MD5
# keys of earlier releases, so their clients still share tasks with this one.
LARGE_BUFFER = 1 << 20


def funcname(func: Any) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    if type(name) is str:
        return _prefix(name)
    return _cleaned(name)


@functools.lru_cache(maxsize=1024)
def _prefix(name: str) -> str:
    # Kept: every submit of a function names its key after it, character by character.
    return _cleaned(name)


def _cleaned(name: Any) -> str:
    if name == "<lambda>":
        return "lambda"
    cleaned = "".join(c if c.isalnum() or c in "_." else "_" for c in name) or "task"
    # A name that starts with a digit would read as a number's key on the wire (wire_key).
    return f"_{cleaned}" if cleaned[0] in "0123456789" else cleaned


def _normalize(value: Any, depth: int = 0) -> Any:
    kind = type(value)
    if kind in _ATOMS_BUT_BYTES:
        return value
    if kind is bytes or kind is bytearray:
        if len(value) >= LARGE_BUFFER:
            return (f"{kind.__name__}-xxh3", len(value), _buffer_digest(value))
        return value if kind is bytes else ("pickle", _pickled(value))
    if kind is Future:
        return ("__future__", value.key)
    if depth > 50:
        raise ValueError("structure too deep to tokenize")
    if kind is tuple or kind is list:
        for item in value:
            if type(item) not in _ATOMS_BUT_BYTES:
                return (kind.__name__, tuple(_normalize(v, depth + 1) for v in value))
        return (kind.__name__, tuple(value))  # the usual arguments: atoms only
    if kind is dict:
        return ("dict", tuple(sorted(((_normalize(k, depth + 1), _normalize(v, depth + 1))
                                      for k, v in value.items()), key=repr)))
    if kind in (set, frozenset):
        return (kind.__name__, tuple(sorted((_normalize(v, depth + 1) for v in value), key=repr)))
    if kind is types.FunctionType and travels_by_value(value):
        return function_parts(value, _normalize)
    nbytes = getattr(value, "nbytes", None)
    if nbytes is not None and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        data = memoryview(value).cast("B") if value.flags.c_contiguous else value.tobytes()
        digest = _buffer_digest(data) if len(data) >= LARGE_BUFFER \
            else hashlib.md5(data).hexdigest()
        return ("ndarray", str(value.dtype), value.shape, digest)
    return ("pickle", _pickled(value))


def _buffer_digest(data: Any) -> str:
    import xxhash  # imported by the first large value, not by every client's start
    return xxhash.xxh3_128_hexdigest(data)


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
    if module and qualname and module not in SCRIPT_MODULES and "<" not in qualname:
        return ("func", module, qualname)
    kind = type(func)
    if kind is types.FunctionType:  # sent by value: its parts, the same in every process
        return function_parts(func, _normalize)
    if kind is functools.partial:
        return ("partial", function_token(func.func), _normalize(func.args),
                _normalize(func.keywords))
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
    return _hashed(pickle.dumps(normalized, protocol=5))


def _hashed(data: bytes) -> str:
    # A large pickle (a frame, a big list) is hashed with XXH3 too, as a large buffer is.
    return _md5(data).hexdigest() if len(data) < LARGE_BUFFER else _buffer_digest(data)


def given_key(key: Any) -> str:
    """A key the user chose (``submit(key=)``, ``map(key=[...])``, ``scatter({key: ...})``):
    a string, or what dask also takes for one -- an int, float, bytes or a tuple of those --
    named as the same key of a dask graph is (``wire_key``)."""
    if type(key) is str and key[:1] not in MAY_NEED_ESCAPE:  # the usual key: its own name
        return key
    if not _dask_key(key):
        raise TypeError(f"a key is a string, or an int, float, bytes or a tuple of those, "
                        f"as dask's keys are; not {type(key).__name__} ({key!r:.80})")
    return wire_key(key)


def _dask_key(key: Any, depth: int = 0) -> bool:
    if isinstance(key, (str, bytes, numbers.Integral, numbers.Real)) \
            and not isinstance(key, bool):
        return True
    return type(key) is tuple and depth < 32 and all(_dask_key(k, depth + 1) for k in key)


def map_keys(func: Any, argsets: list[tuple], kwargs: dict, key: Any, pure: bool) -> list[str]:
    """The keys of ``map``: the ones given (a list, one per call), else ``prefix-token`` per
    call (``key`` is the prefix; the function's name by default), unique when not pure."""
    if isinstance(key, list):
        if len(key) != len(argsets):
            raise ValueError(f"map got {len(key)} keys for {len(argsets)} tasks")
        return [given_key(k) for k in key]
    if key is not None and not isinstance(key, str):
        raise TypeError(f"map's key is a prefix (a string) or a list of keys, one per task; "
                        f"not {type(key).__name__}")
    # A prefix that reads as the start of another key's literal gets the escape once.
    prefix = wire_key(f"{key}-")[:-1] if key else funcname(func)
    if not pure:
        return [f"{prefix}-{uuid.uuid4().hex}" for _ in argsets]
    try:  # what every call shares is normalized once: the same keys as ``tokenize``'s
        shared_function = _normalize(function_token(func))
        shared_keywords = _normalize(kwargs)
    except Exception:  # noqa: BLE001 -- an unhashable input gets a unique key
        return [f"{prefix}-{uuid.uuid4().hex}" for _ in argsets]
    try:  # (``_call_token`` written out, with no call of its own per task)
        return [f"{prefix}-"
                + _hashed(pickle.dumps((shared_function, _normalize(args), shared_keywords),
                                       protocol=5))
                for args in argsets]
    except Exception:  # noqa: BLE001 -- a call's arguments unhashable: each call on its own
        return [f"{prefix}-{_call_token(shared_function, args, shared_keywords)}"
                for args in argsets]


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
    """``funcname-token``: the token is ``tokenize(function_token(func), args, kwargs)``'s."""
    if not pure:
        return f"{funcname(func)}-{uuid.uuid4().hex}"
    try:
        token = _digest((_normalize(function_token(func)), _normalize(args),
                         _NO_KEYWORDS if type(kwargs) is dict and not kwargs
                         else _normalize(kwargs)))
    except Exception:  # noqa: BLE001 -- an unhashable input gets a unique key
        token = uuid.uuid4().hex
    return f"{funcname(func)}-{token}"


_NO_KEYWORDS = ("dict", ())  # what ``_normalize({})`` gives
