"""``Executor.persist``: dask collections computed on the cluster and kept there.

The collections' graph is submitted as ``compute`` submits it; each collection comes back
rebuilt (``__dask_postpersist__``) on a graph of futures for its keys, so computing it, or
building on it, starts from the results held by the workers. The futures hold the results
while the collection is alive, as in dask.distributed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dask_defaults import cluster_shuffle
from .dask_graphs import actor_keys, annotated_options, flatten_keys, restricted, submit_graph
from .dask_nodes import read_graph
from .packing import futures_of

if TYPE_CHECKING:
    from .core.client import ClientCore


def persist(core: ClientCore, collections: Any, optimize_graph: bool = True,
            actors: Any = None, **restrictions: Any) -> Any:
    """A collection (or a list, tuple or set of them, then a list) like each given, whose graph
    is the futures of its results on the cluster. ``restrictions``: ``workers``,
    ``resources``, ``allow_other_workers``, ``retries``, ``priority``, as ``get`` takes
    them; ``actors`` as ``get`` takes it too."""
    from dask.base import collections_to_expr, is_dask_collection

    single = not isinstance(collections, (list, tuple, set, frozenset))
    given = [collections] if single else list(collections)
    if not given:
        return []
    for collection in given:
        if not is_dask_collection(collection):
            raise TypeError(f"persist takes dask collections, not {type(collection).__name__}")
    with cluster_shuffle():
        expr = collections_to_expr(given, optimize_graph).optimize()
    keys = expr.__dask_keys__()
    if len(keys) != len(given):
        raise ValueError(f"{len(given)} collections gave {len(keys)} sets of keys")
    graph, held = read_graph(expr)
    futures = submit_graph(core, graph, options_of=restricted(
        graph, annotated=annotated_options(expr, graph), actors=actor_keys(core, graph, actors),
        **restrictions), persisted=held)
    persisted = []
    for collection, collection_keys in zip(given, keys):
        rebuild, state = collection.__dask_postpersist__()
        persisted.append(rebuild({key: futures[key] for key in flatten_keys(collection_keys)},
                                 *state))
    return persisted[0] if single else persisted


def normalize(core: ClientCore, collection: Any) -> Any:
    """``collection`` rebuilt with the tasks of keys this client holds (computed, or being
    computed) replaced by their futures, as dask's ``Client.normalize_collection``: computing
    it starts from those results instead of computing them again."""
    from dask.base import is_dask_collection

    from .keys import given_key

    if not is_dask_collection(collection):
        raise TypeError(f"normalize_collection takes a dask collection, not "
                        f"{type(collection).__name__}")
    graph = dict(collection.__dask_graph__())
    with core.lock:
        held = {key: given_key(key) for key in graph
                if (known := core.state.held_states().get(given_key(key))) is not None
                and known.status in ("pending", "finished")}
        if not held:
            return collection
        graph.update({key: core.future(name) for key, name in held.items()})
    rebuild, state = collection.__dask_postpersist__()
    return rebuild(graph, *state)


__all__ = ["futures_of", "normalize", "persist"]
