"""The class of a task's value, pickled once per class, for the center to pass on to clients
(protocol feature ``result-types``): a Python client's ``Future.type`` is then the class, as
dask's is, where the name alone says ``DataFrame`` for pandas' and dask's alike."""
from __future__ import annotations

import weakref

from dist_protocol.serialize import serialize

from .sizeof import defined_by_module

# A class no module defines (the user's ``__main__``, a function's local class) pickles by
# value, methods and all: past this many bytes it is left out, and clients show its name.
MAX_PICKLED_TYPE_BYTES = 1024
# Classes remembered at most: a task that makes a class per call must not grow this for
# ever (past it, a class is pickled at each task: correct, only slower).
MAX_REMEMBERED_TYPES = 1000

_pickled: dict[type, bytes | None] = {}  # the classes a module defines
# Classes made by tasks or unpickled by value, while they live (``defined_by_module``).
_pickled_made: weakref.WeakKeyDictionary[type, bytes | None] = weakref.WeakKeyDictionary()


def pickled_type(kind: type) -> bytes | None:
    """``kind`` pickled (by reference when a module defines it), or None when it does not
    pickle, or only by value into more than ``MAX_PICKLED_TYPE_BYTES``."""
    try:
        return _pickled[kind]
    except KeyError:
        pass
    except TypeError:  # a metaclass that defines __eq__ without __hash__: not remembered
        return _pickle(kind)
    try:
        return _pickled_made[kind]
    except KeyError:
        pass
    data = _pickle(kind)
    remembered = _pickled if defined_by_module(kind) else _pickled_made
    if len(remembered) < MAX_REMEMBERED_TYPES:
        remembered[kind] = data
    return data


def _pickle(kind: type) -> bytes | None:
    try:
        frames = serialize(kind).frames
        data = bytes(frames[0]) if len(frames) == 1 else None
    except Exception:  # noqa: BLE001 -- a class that does not pickle: its name will do
        data = None
    if data is not None and len(data) > MAX_PICKLED_TYPE_BYTES:
        data = None
    return data
