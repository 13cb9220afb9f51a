"""Running dask graphs on the cluster: ``Executor.get`` is a dask scheduler.

Each graph node travels as the task's function (dask is needed on the workers, as with any
library the tasks use); its inputs are the futures of its dependencies, so data moves between
workers, never through the client.
"""
from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dist_protocol.messages import Submit

from .future import Future

if TYPE_CHECKING:
    from .executor import Executor


def dist_key(key: Hashable) -> str:
    """dask keys are strings or tuples like ``('x-abc', 0, 1)``; dist keys are strings."""
    return key if isinstance(key, str) else repr(key)


def topological_order(graph: Mapping) -> list:
    remaining = {key: set(node.dependencies) & graph.keys() for key, node in graph.items()}
    dependents: dict = {key: [] for key in graph}
    for key, deps in remaining.items():
        for dep in deps:
            dependents[dep].append(key)
    ready = [key for key, deps in remaining.items() if not deps]
    order = []
    while ready:
        key = ready.pop()
        order.append(key)
        for child in dependents[key]:
            remaining[child].discard(key)
            if not remaining[child]:
                ready.append(child)
    if len(order) != len(graph):
        raise ValueError("the dask graph has a cycle")
    return order


def _flatten(keys: Any) -> Iterator:
    if isinstance(keys, list):
        for k in keys:
            yield from _flatten(k)
    else:
        yield keys


def _nest(keys: Any, values: dict) -> Any:
    if isinstance(keys, list):
        return [_nest(k, values) for k in keys]
    return values[keys]


def get(executor: Executor, dsk: Mapping, keys: Any, **kwargs: Any) -> Any:
    """Compute ``keys`` of the dask graph ``dsk`` on the cluster (dask's scheduler signature)."""
    futures = submit_graph(executor, dsk)
    wanted = list(dict.fromkeys(_flatten(keys)))
    values = executor.gather({key: futures[key] for key in wanted})
    return _nest(keys, values)


def compute(executor: Executor, collection: Any) -> Future:
    """A future for a dask collection's value, computed on the cluster (as ``dask.compute``
    would: the same optimizations, then the collection's own finalize step, as a task too)."""
    from dask._expr import FinalizeCompute
    from dask.base import collections_to_expr

    expr = FinalizeCompute(collections_to_expr([collection], True)).optimize()
    [key] = list(_flatten(expr.__dask_keys__()))
    return submit_graph(executor, expr)[key]


def submit_graph(executor: Executor, dsk: Any) -> dict[Hashable, Future]:
    """Submit every node of a dask graph (or expression) in one message; a future per key."""
    from dask._task_spec import convert_legacy_graph
    if hasattr(dsk, "__dask_graph__"):  # dask hands schedulers an expression nowadays
        dsk = dsk.__dask_graph__()
    graph = convert_legacy_graph(dsk)
    futures: dict[Hashable, Future] = {}
    tasks = []
    executor._check_pickled_code(executor._options(None, 0, 0, False, None))
    with executor._lock:
        for key in topological_order(graph):
            node = graph[key]
            inputs = {dep: futures[dep] for dep in node.dependencies if dep in futures}
            name = dist_key(key)
            tasks.append(executor._task(name, executor._function_payload(node), (inputs,), {},
                                        executor._options(None, 0, 0, False, None)))
            futures[key] = Future(name, executor)
    executor._send(Submit(tasks=tasks, small_values=True))
    return futures


@contextlib.contextmanager
def as_dask_scheduler(executor: Executor) -> Iterator[None]:
    import dask
    with dask.config.set(scheduler=executor.get):
        yield
