"""``Executor.compute`` of containers: a list, tuple, set or dict (or an iterator, read as a
list) holding dask collections is one future of it, its collections computed.

dask.distributed wraps such a container in ``dask.delayed``, which asks each collection for
its keys before optimization: a dask dataframe's expression cannot say them then, and the
compute of ``{"total": ddf.a.sum()}`` raised a bare ``NotImplementedError``. Here the
collections inside are computed as outputs of the call's graph (with the others, shared
parts once), and a task of their futures puts the container together, as ``dask.compute``
does in the caller's process.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .dask_graphs import compute

if TYPE_CHECKING:
    from .core.client import ClientCore

# What ``traverse`` looks into. A frozenset goes through ``dask.delayed`` as before (dask's
# repacking leaves it as it is, collections unread).
_UNPACKED = (list, tuple, set, dict, Iterator)


def compute_given(core: ClientCore, collections: Any, optimize_graph: bool = True,
                  traverse: bool = True, **restrictions: Any) -> Any:
    """``Executor.compute``: a future for a collection, or a list of them for a list, tuple
    or set. With ``traverse``, a list, tuple, set, dict or iterator (given, or in the list)
    is computed as one value, its collections inside computed (as dask's ``traverse``);
    anything else that is not a collection stays as it is."""
    from dask import delayed, is_dask_collection
    from dask.base import unpack_collections

    single = not isinstance(collections, (list, tuple, set, frozenset))
    items = [collections] if single else list(collections)
    packed: dict[int, tuple[int, Callable, str]] = {}  # item -> (collections, repack, name)
    outputs: list = []
    for at, item in enumerate(items):
        if traverse and isinstance(item, frozenset):
            item = items[at] = delayed(item)
        if traverse and isinstance(item, _UNPACKED):
            inside, repack = unpack_collections(item, traverse=True)
            kind = "list" if isinstance(item, Iterator) else type(item).__name__
            packed[at] = (len(inside), repack, kind)
            outputs.extend(inside)
        elif is_dask_collection(item):
            outputs.append(item)
    futures = iter(compute(core, outputs, optimize_graph, **restrictions))
    results: list = []
    for at, item in enumerate(items):
        if at in packed:
            count, repack, kind = packed[at]
            values = [next(futures) for _ in range(count)]
            together = delayed(_repacked, pure=False)(repack, values,
                                                      dask_key_name=f"{kind}-{uuid.uuid4()}")
            restrictions.pop("actors", None)  # (the container is no actor)
            results.extend(compute(core, [together], True, **restrictions))
        else:
            results.append(next(futures) if is_dask_collection(item) else item)
    return results[0] if single else results


def _repacked(repack: Callable, values: list) -> Any:
    """The container, its collections' values in their places (dask's ``repack``)."""
    (container,) = repack(values)
    return container
