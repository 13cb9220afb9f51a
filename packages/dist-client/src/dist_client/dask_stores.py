"""``da.store`` into a numpy array of the caller's process, refused before it runs.

dask's local schedulers run the store's tasks in the caller's process, so they write into the
caller's array. On a cluster each task gets a pickled copy of the array in a worker's process
and writes into that copy: the caller's array stays as it was, and nothing says so (as on
dask.distributed). A target that workers reach (zarr, HDF5) is stored into as on dask's local
schedulers.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_STORE_FUNCTIONS = {"load_store_chunk", "store_chunk"}


def _is_numpy_array(value: Any) -> bool:
    # A ``np.memmap`` too: it pickles as a plain array, its file left behind.
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("ndarray", "memmap")


def _store_targets(node: Any, bound: Mapping) -> Iterator[Any]:
    """The targets of the chunk stores in ``node``, also inside a subgraph dask fused into
    one task (whose inputs are bound by name to the task's arguments)."""
    func = getattr(node, "func", None)
    args: tuple[Any, ...] = tuple(getattr(node, "args", ()))
    if getattr(func, "__name__", None) == "_execute_subgraph" and len(args) >= 3:
        inner, _, names, *values = args
        if isinstance(inner, Mapping) and isinstance(names, tuple):
            bound = dict(zip(names, values))
            for inner_node in inner.values():
                yield from _store_targets(inner_node, bound)
    elif (getattr(func, "__name__", None) in _STORE_FUNCTIONS
          and getattr(func, "__module__", None) == "dask.array.core" and len(args) > 1):
        target = args[1]
        target = bound.get(getattr(target, "key", None), target)
        yield getattr(target, "value", target)


def refuse_stores_into_local_arrays(graph: Mapping) -> None:
    """Raise ``TypeError`` if a task of ``graph`` is dask's store of a chunk into a numpy
    array of this process."""
    for node in graph.values():
        if any(_is_numpy_array(target) for target in _store_targets(node, {})):
            raise TypeError(
                "da.store into a numpy array of this process: on a cluster its tasks would "
                "write into copies of it in the workers' processes and leave it unchanged. "
                "Store into a target the workers reach (zarr, HDF5), or bring the values "
                "here with compute() and assign them (target[...] = x.compute())")
