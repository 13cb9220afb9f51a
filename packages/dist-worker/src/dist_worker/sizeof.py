"""How many bytes of memory a value holds: an estimate, fast enough to take for every result.

Buffers, numpy arrays and pandas objects report their own sizes; containers add up their
items (sampling the large ones, as dask does, since summing a million small items would cost
more than the task that made them); anything else is as large as its pickle, which the worker
has made anyway to check that the value can travel. No estimate ever raises: a value whose
``__sizeof__`` or ``memory_usage`` fails is sized by its pickle, or by ``sys.getsizeof``.

``plain_size`` sizes only what pickling cannot fail on (arrays and frames of plain data and
containers of them): a large result of that kind is not pickled when it is made, only if a
peer or a client asks for it.
"""
from __future__ import annotations

import itertools
import logging
import random
import sys
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dist.worker")

# Containers longer than this are sized from a sample of their items.
SAMPLE_ABOVE = 10
SAMPLE_SIZE = 10
# Pandas object columns are sized from this many of their items.
OBJECT_SAMPLE = 100
GC_HEADER = sys.getsizeof([]) - [].__sizeof__()  # what sys.getsizeof adds for a container
_SHALLOW: tuple[tuple[type, Callable[[Any], int]], ...] = (
    (list, list.__sizeof__), (tuple, tuple.__sizeof__), (set, set.__sizeof__),
    (frozenset, frozenset.__sizeof__))

_BY_TYPE: dict[type, Callable[[Any], int]] = {}
_reported: set[str] = set()


def _buffer(value: Any) -> int:
    return sys.getsizeof(value)


def _memoryview(value: memoryview) -> int:
    return value.nbytes + sys.getsizeof(value)


def _shallow(value: Any, base: Callable[[Any], int]) -> int:
    """The container itself, without its items (``base``: its builtin type's ``__sizeof__``).
    A subclass's own ``__sizeof__`` is not asked: it may size every item deeply (dask's
    shuffle groups do, a pandas frame at a time), and the items are counted here anyway."""
    return base(value) + GC_HEADER


def _sequence(value: Any) -> int:
    n = len(value)
    base = next(shallow for kind, shallow in _SHALLOW if isinstance(value, kind))
    if n > SAMPLE_ABOVE:
        items = random.sample(list(value) if isinstance(value, (set, frozenset)) else value,
                              SAMPLE_SIZE)
        return _shallow(value, base) + int(sum(map(sizeof, items)) * n / SAMPLE_SIZE)
    return _shallow(value, base) + sum(map(sizeof, value))


def _dict(value: dict) -> int:
    n = len(value)
    if n > SAMPLE_ABOVE:
        pairs = list(itertools.islice(value.items(), SAMPLE_SIZE))
        per_item = sum(sizeof(k) + sizeof(v) for k, v in pairs) / len(pairs)
        return _shallow(value, dict.__sizeof__) + int(per_item * n)
    return _shallow(value, dict.__sizeof__) + sum(sizeof(k) + sizeof(v) for k, v in value.items())


for _kind in (bytes, bytearray, str, int, float, complex, bool, type(None)):
    _BY_TYPE[_kind] = _buffer
_BY_TYPE[memoryview] = _memoryview
for _container in (list, tuple, set, frozenset):
    _BY_TYPE[_container] = _sequence
_BY_TYPE[dict] = _dict


def _numpy(value: Any) -> int:
    if value.dtype == object:
        return sys.getsizeof(value) + _sequence(value.ravel().tolist())
    if value.base is not None and value.strides and 0 in value.strides:
        return value.itemsize  # a broadcast view: one element backs every position
    return value.nbytes + 112  # 112: the array object itself


def _object_column(values: Any) -> int:
    """Bytes of a column of Python objects (strings mostly), from a sample of them."""
    n = len(values)
    if n == 0:
        return 0
    sample = values[:OBJECT_SAMPLE] if n > OBJECT_SAMPLE else values
    per_item = sum(sys.getsizeof(v) for v in sample) / len(sample)
    return int(per_item * n) + 8 * n


def _values(values: Any) -> int:
    """Bytes of a pandas column's (or block's) values: a numpy array or an extension array.
    Their ``nbytes`` is what they hold, except for Python objects (object columns, strings
    stored as Python strings), whose pointers it counts: those are sampled."""
    dtype = values.dtype
    # (compared, not named: numpy makes a dtype's name in Python, 30 us a column here)
    if dtype == object or getattr(dtype, "storage", None) == "python":  # noqa: E721
        import numpy
        return _object_column(numpy.asarray(values, dtype=object).ravel())
    return int(values.nbytes)


def _pandas_frame(value: Any) -> int:
    # The frame's arrays as pandas keeps them (one per block of columns of one type): a
    # column at a time, pandas makes a Series per column, about a millisecond for a frame of
    # four columns, more than sizing it should ever take (every result and every input
    # fetched is sized).
    arrays = getattr(getattr(value, "_mgr", None), "arrays", None)
    if isinstance(arrays, list):
        total = sum(_values(values) for values in arrays)
    else:  # a pandas without them
        total = sum(_values(column.array) for _, column in value.items())
    return total + _pandas_index(value.index) + 300


def _pandas_series(value: Any) -> int:
    return _values(value.array) + _pandas_index(value.index) + 150


def _pandas_index(value: Any) -> int:
    if value.dtype == object:
        return _object_column(value.to_numpy()) + 100
    # (its nbytes, not memory_usage(): that also builds the index's hash table to size it)
    return int(value.nbytes) + 100


def _lazy_registrations() -> None:
    """Register numpy and pandas sizes once those libraries are imported (never import them
    here: a worker that runs neither should not pay for them)."""
    # (getattr: a library half imported, by a task on another thread, lacks its names yet)
    ndarray = getattr(sys.modules.get("numpy"), "ndarray", None)
    if ndarray is not None and ndarray not in _BY_TYPE:
        _BY_TYPE[ndarray] = _numpy
    pandas = sys.modules.get("pandas")
    frame, series, index = (getattr(pandas, name, None)
                            for name in ("DataFrame", "Series", "Index"))
    if frame is not None and series is not None and index is not None and frame not in _BY_TYPE:
        _BY_TYPE[frame] = _pandas_frame
        _BY_TYPE[series] = _pandas_series
        _BY_TYPE[index] = _pandas_index


def _by_base(value: Any, kind: type) -> Callable[[Any], int] | None:
    """The estimate of a type ``value``'s class derives from (a subclass of a known one)."""
    _lazy_registrations()
    estimate = _BY_TYPE.get(kind)
    if estimate is None:
        for base, function in list(_BY_TYPE.items()):
            if isinstance(value, base) and base not in (int, bool, type(None)):
                return function
    return estimate


def sizeof(value: Any, pickled: int | None = None) -> int:
    """Estimated bytes of memory held by ``value``; ``pickled``: its pickled size if known,
    used for types this module does not know."""
    kind = type(value)
    try:
        # (the look at its bases is inside: isinstance asks the value, and a weakref proxy
        # whose object is gone raises there, in the worker's own callback)
        estimate = _BY_TYPE.get(kind) or _by_base(value, kind)
        if estimate is not None:
            return int(estimate(value))
        if pickled is not None:
            return max(int(pickled), sys.getsizeof(value))
        return _by_pickle(value)
    except Exception as exc:  # noqa: BLE001 -- a size is an estimate; it must never fail a task
        name = kind.__qualname__
        if name not in _reported:
            _reported.add(name)
            log.warning("cannot estimate the size of a %s (%s: %s); counting %s", name,
                        type(exc).__name__, exc,
                        "its pickled size" if pickled is not None else "sys.getsizeof")
        if pickled is not None:
            return int(pickled)
        try:
            return sys.getsizeof(value)
        except Exception:  # noqa: BLE001
            return 0


# Containers of plain data are looked into this deep and this wide, no further: a result of
# that shape is a dask shuffle's groups or a tuple of arrays, not a million small items.
PLAIN_DEPTH = 3
PLAIN_ITEMS = 1000
_PLAIN_KINDS = frozenset("biufcmMSU")  # numpy dtypes of fixed-size data: no Python objects


def plain_size(value: Any) -> int | None:
    """The estimated bytes of ``value`` when pickling it cannot fail: bytes, strings and
    numbers, numpy arrays and pandas frames, series and indexes of fixed-size or string dtypes,
    and lists, tuples and dicts of these. None for anything else, which only pickling can
    tell (an object column or a user's class may hold a lock)."""
    try:
        return _plain(value, PLAIN_DEPTH)
    except Exception:  # noqa: BLE001 -- a failed look is "not known to be plain"
        return None


def _plain(value: Any, depth: int) -> int | None:
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return sys.getsizeof(value)
    base = _plain_container(kind)
    if base is not None:
        if depth == 0 or len(value) > PLAIN_ITEMS or getattr(value, "__dict__", None):
            return None
        total = _shallow(value, _SHALLOW_OF[base])
        items = itertools.chain.from_iterable(value.items()) if base is dict else value
        for item in items:
            size = _plain(item, depth - 1)
            if size is None:
                return None
            total += size
        return total
    _lazy_registrations()
    estimate = _BY_TYPE.get(kind)
    if estimate is _numpy:
        return estimate(value) if _plain_dtype(value.dtype) else None
    if estimate is _pandas_frame:
        blocks = getattr(getattr(value, "_mgr", None), "arrays", None)
        dtypes = [b.dtype for b in blocks] if isinstance(blocks, list) else list(value.dtypes)
        plain = (all(map(_plain_dtype, dtypes)) and _plain_index(value.index)
                 and _plain_labels(value.columns) and not value.attrs)
    elif estimate is _pandas_series:
        plain = (_plain_dtype(value.dtype) and _plain_index(value.index)
                 and _plain_label(value.name) and not value.attrs)
    elif estimate is _pandas_index:
        plain = _plain_index(value)
    else:
        return None
    return estimate(value) if plain else None


def defined_by_module(kind: type) -> bool:
    """Whether ``kind`` is what its module holds under its name. Such a class lives as long as
    the process; one a task makes at each call, or one unpickled by value with each new
    function, is a new class each time, and keeps what its methods reach (the task's closure:
    a megabyte a class, kept for each of 1,000 remembered, in benchmarks/README.md,
    "Long-lived servers, round four"): remembered by class, those are held weakly."""
    found: Any = sys.modules.get(kind.__module__)
    for part in kind.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is kind


def _plain_container(kind: type) -> type | None:
    """``list``, ``tuple`` or ``dict`` for those and for their subclasses that pickle as their
    items do (importable, no pickling of their own: dask's shuffle groups, named tuples)."""
    try:
        return _CONTAINERS[kind]
    except KeyError:
        pass
    try:
        return _CONTAINERS_MADE[kind]
    except (KeyError, TypeError):  # (TypeError: a metaclass with __eq__ and no __hash__)
        pass
    base = next((b for b in (dict, tuple, list) if issubclass(kind, b)), None)
    lasting = defined_by_module(kind)
    if base is not None:
        own = ("__reduce__", "__reduce_ex__", "__getstate__")
        ancestors = [c for c in kind.__mro__ if c not in (base, object)]
        if (not lasting or any(name in vars(c) for c in ancestors for name in own)
                or any(vars(c).get("__slots__") for c in ancestors)):
            base = None
    remembered = _CONTAINERS if lasting else _CONTAINERS_MADE
    if len(remembered) < 1000:
        try:
            remembered[kind] = base
        except TypeError:
            pass
    return base


def _plain_dtype(dtype: Any) -> bool:
    """numpy's dtypes of fixed-size data, and pandas' own dtypes that hold none of the user's
    objects (strings, nullable numbers, time zones, categories of plain data)."""
    kind = getattr(dtype, "kind", None)
    if type(dtype).__module__ == "numpy" or type(dtype).__module__.startswith("numpy."):
        return kind in _PLAIN_KINDS and not dtype.hasobject
    name = type(dtype).__name__
    if name == "CategoricalDtype":
        categories = dtype.categories
        return categories is None or _plain_dtype(categories.dtype)
    return name in _PLAIN_PANDAS_DTYPES


def _plain_index(index: Any) -> bool:
    if not _plain_index_names(index):
        return False
    if type(index).__name__ == "MultiIndex":
        return all(_plain_index(level) for level in index.levels)
    return _plain_dtype(index.dtype)


def _plain_labels(columns: Any) -> bool:
    """A frame's column labels: strings and numbers most often, kept as Python objects."""
    if len(columns) > PLAIN_ITEMS or not _plain_index_names(columns):
        return False
    return _plain_dtype(columns.dtype) or all(map(_plain_label, columns))


def _plain_index_names(index: Any) -> bool:
    return all(map(_plain_label, index.names))


def _plain_label(label: Any) -> bool:
    if type(label) is tuple:
        return all(map(_plain_label, label))
    return type(label) in PLAIN_SCALARS


# Scalars: plain, and sized by ``sys.getsizeof`` (as ``sizeof`` does), which callers on a
# task's path call themselves for these rather than through this module's calls.
PLAIN_SCALARS = frozenset((bytes, str, int, float, complex, bool, type(None)))
_CONTAINERS: dict[type, type | None] = {list: list, tuple: tuple, dict: dict}
_CONTAINERS_MADE: weakref.WeakKeyDictionary[type, type | None] = weakref.WeakKeyDictionary()
_SHALLOW_OF: dict[type, Callable[[Any], int]] = {
    list: list.__sizeof__, tuple: tuple.__sizeof__, dict: dict.__sizeof__}
_PLAIN_PANDAS_DTYPES = frozenset((
    "StringDtype", "ArrowDtype", "DatetimeTZDtype", "PeriodDtype",
    "BooleanDtype", "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype",
    "UInt16Dtype", "UInt32Dtype", "UInt64Dtype", "Float32Dtype", "Float64Dtype"))


def _by_pickle(value: Any) -> int:
    from dist_protocol.serialize import serialize

    try:
        return serialize(value).nbytes
    except Exception:  # noqa: BLE001 -- an unpicklable value: the object itself is all we see
        return sys.getsizeof(value)
