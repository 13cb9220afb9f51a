"""A dask graph made the tasks dist runs: pure functions of the graph, no client.

``read_graph`` converts dask's legacy graphs, gives each node the key the graph holds it under
and makes futures inside arguments references to their keys; ``fuse_chains`` makes each linear
chain one task; ``unfused`` makes a subgraph dask fused nested tasks, as each node is packed;
``topological_order`` is an order to send them in. Submitting them is ``dask_graphs``'.
"""
from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from typing import Any

from dist_protocol.key_names import wire_key
from dist_protocol.serialize import BYTES_OUT_OF_BAND, bytes_out_of_band

from .future import Future


def _mapping(dsk: Any) -> Mapping:
    if hasattr(dsk, "__dask_graph__"):  # dask hands schedulers an expression nowadays
        return dsk.__dask_graph__()
    return dsk


def read_graph(dsk: Any) -> tuple[dict, dict[Hashable, Future]]:
    """A dask graph or expression read once (an expression makes its graph anew on each
    ``__dask_graph__``, milliseconds for a shuffle): its tasks by key, and its persisted
    keys, whose node is the future of that very key (a persisted collection's graph):
    computed already, those are inputs held by the client, not tasks."""
    from dask._task_spec import convert_legacy_graph
    dsk = _mapping(dsk)
    persisted = {key: node for key, node in dsk.items()
                 if type(node) is Future and node.name == wire_key(key)}
    if persisted:
        dsk = {key: node for key, node in dsk.items() if key not in persisted}
    graph = convert_legacy_graph(dsk)
    # Subgraphs dask fused stay as they are here: each is made nested tasks (``unfused``) as
    # it is packed, so that this walk, done before the first task can be sent, stays short.
    return ({key: _futures_as_references(_named(key, node)) for key, node in graph.items()},
            persisted)


def _named(key: Any, node: Any) -> Any:
    """``node`` carrying ``key``, the key the graph holds it under. dask schedules by the
    graph's keys, and some graphs hold a node under another (``dd.from_delayed`` maps each
    partition's key to an ``Alias`` named after the delayed value it reads); fusing a chain
    needs each link to carry its own key, or the chain has no last link."""
    from dask._task_spec import Alias

    if node.key == key:
        return node
    if isinstance(node, Alias):
        return Alias(key, node.target)
    renamed = node.substitute({}, key=key)
    return renamed if renamed.key == key else _task(key, _identity, node)


def _futures_as_references(node: Any) -> Any:
    """``node`` with every Future inside its arguments made a reference to the future's key.

    dask turns futures into references where it parses input (legacy tuples, ``Task`` built
    from raw arguments), but ``delayed`` keeps a future it was called with as a literal
    argument, and graph optimization may fuse such a task into a subgraph; pickled, such a
    Future would reach the task as a future rather than as its value.
    """
    from dask._task_spec import Alias, DataNode

    if not _contains_futures(node):
        return node
    if isinstance(node, DataNode):
        parsed = _references(node.value)
        if isinstance(parsed, Alias):
            return Alias(node.key, parsed.target)
        return _task(node.key, _identity, parsed)
    return _references(node)


def _contains_futures(value: Any) -> bool:
    from dask._task_spec import DataNode, Task

    # Called on every node of every graph: the imports above are resolved once, not at each
    # level of the walk (a fused subgraph nests tasks several levels deep).
    def walk(value: Any) -> bool:
        kind = type(value)
        if kind is Future:
            return True
        if kind in _CONTAINERS:
            return any(map(walk, value))
        if kind is dict:
            return any(map(walk, value.values()))
        if isinstance(value, Task):
            return any(map(walk, value.args)) or any(map(walk, value.kwargs.values()))
        if isinstance(value, DataNode):
            return walk(value.value)
        return False

    return walk(value)


_CONTAINERS = (list, tuple, set, frozenset)


def _references(value: Any) -> Any:
    """``value`` (a task argument) with its futures made ``Alias``es of their keys."""
    from dask._task_spec import Alias, Task, _execute_subgraph, parse_input

    if not _contains_futures(value):
        return value
    if type(value) is Future:  # (the graph names keys as the user does: ``Future.key``)
        return Alias(value.key)  # type: ignore[arg-type]
    if type(value) is Task and value.func is _execute_subgraph:
        # A fused subgraph gets its inputs as arguments: the futures' keys join them.
        inner, outkey, inkeys, *deps = value.args
        inner = {k: _futures_as_references(v) for k, v in inner.items()}
        extra = sorted({d for v in inner.values() for d in v.dependencies}
                       - inner.keys() - set(inkeys), key=repr)
        return _task(value.key, _execute_subgraph, inner, outkey, (*inkeys, *extra), *deps,
                     *(Alias(key) for key in extra))
    if type(value) is Task:
        return _task(value.key, value.func, *(_references(a) for a in value.args),
                     _data_producer=value.data_producer,
                     **{k: _references(v) for k, v in value.kwargs.items()})
    return parse_input(value)  # plain lists, tuples, sets, dicts: dask's containers


def large_bytes_apart(node: Any) -> Any:
    """``node``, unless it is a literal ``bytes`` value of a megabyte or more: then a task
    returning it (``bytes(data)`` is ``data``) whose data pickles as an out-of-band frame.
    A pickle writes ``bytes`` in band, so a GiB literal was copied into its node's pickle on
    the client and out of it again on the worker."""
    from dask._task_spec import DataNode

    if type(node) is DataNode and type(node.value) is bytes \
            and len(node.value) >= BYTES_OUT_OF_BAND:
        return _task(node.key, bytes, bytes_out_of_band(node.value))
    return node


def literal_bytes_apart(obj: Any) -> Any:
    """A pickler's ``reducer_override``: a ``DataNode`` holding bytes of a megabyte or more,
    at any depth of a node (a fused chain's literal), written with its data as an out-of-band
    buffer; ``NotImplemented`` for anything else."""
    from dask._task_spec import DataNode

    if type(obj) is DataNode and type(obj.value) is bytes \
            and len(obj.value) >= BYTES_OUT_OF_BAND:
        return DataNode, (obj.key, bytes_out_of_band(obj.value))
    return NotImplemented


def _task(key: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
    from dask._task_spec import Task
    return Task(key, func, *args, **kwargs)


def _identity(value: Any) -> Any:
    return value


def fuse_chains(graph: dict, keep: Collection[Hashable]) -> dict:
    """The graph with each linear chain of tasks made one task under its last key: a task
    whose result only the next one reads, that reads nothing else, and that is not in ``keep``
    (the keys asked for), runs inside the next. Nothing runs in parallel along a chain; as
    separate tasks, each link cost a round trip through the center. dask fuses such chains
    itself for arrays, bags and delayed, but hands dataframe graphs over unfused (a groupby's
    read, convert, group, reset_index, combine: five tasks per partition)."""
    from dask._task_spec import Task

    readers: dict[Hashable, list[Hashable]] = {}
    for key, node in graph.items():
        for dep in node.dependencies:
            if dep in graph:
                readers.setdefault(dep, []).append(key)
    keep = set(keep)

    def runs_inside_its_reader(key: Hashable) -> bool:
        users = readers.get(key)
        if users is None or len(users) != 1 or key in keep or graph[key].block_fusion:
            return False
        reader = graph[users[0]]
        return len(reader.dependencies) == 1 and not reader.block_fusion

    fused = {}
    for key, node in graph.items():
        if runs_inside_its_reader(key):
            continue  # part of the chain ending at a later key
        chain = [node]
        while len(node.dependencies) == 1:
            (dep,) = node.dependencies
            if dep not in graph or not runs_inside_its_reader(dep):
                break
            node = graph[dep]
            chain.append(node)
        if len(chain) == 1:
            fused[key] = chain[0]
        else:
            links = {link.key: unfused(link) for link in chain}
            fused[key] = (_nested(links, chain[0].key, key)
                          or Task.fuse(*reversed(chain), key=key))
    return fused


# Tasks at most in a subgraph run as nested tasks (each call a level of the interpreter's
# stack); larger ones run as dask runs subgraphs.
MAX_NESTED = 32


def _nested(inner: Mapping, outkey: Hashable, key: Hashable,
            given: Mapping | None = None) -> Any:
    """The subgraph ``inner`` (nodes by key, computing ``outkey``) as one task ``key`` whose
    arguments are the tasks it reads, or None unless each node of it but the last is read by
    exactly one other (a chain, a tree) and every node is a plain ``Task``, ``DataNode`` or
    ``Alias``.
    ``given``: what the subgraph's own names for its inputs stand for (references to the
    graph's keys, or tasks).

    dask runs a fused subgraph through ``execute_graph``, which orders it with ``dask.order``
    on every run: 60-70 us for a chain of a few links, against 5-10 us to call the same tasks
    nested. Where a node is read twice, nesting would compute it twice: those stay subgraphs.
    """
    from dask._task_spec import Alias, DataNode, Task

    if len(inner) > MAX_NESTED:
        return None
    read: set[Hashable] = set()
    for node in inner.values():
        if type(node) not in (Task, DataNode, Alias):
            return None
        for dep in node.dependencies:
            if dep in inner:
                if dep in read:
                    return None
                read.add(dep)
    if outkey in read or len(read) != len(inner) - 1:
        return None
    given = given or {}

    def build(at: Hashable) -> Any:
        node = inner[at]
        subs = {dep: build(dep) if dep in inner else given[dep]
                for dep in node.dependencies if dep in inner or dep in given}
        return node.substitute(subs) if subs else node

    out = build(outkey)
    if type(out) is not Task:  # (an alias of an input)
        return None
    producer = any(node.data_producer for node in inner.values())
    if out.key == key and out.data_producer == producer:
        return out  # (as a chain's last link nearly always is: made anew by ``substitute``)
    return Task(key, out.func, *out.args, _data_producer=producer, **out.kwargs)


def unfused(node: Any) -> Any:
    """A subgraph dask fused (``Task.fuse``: blockwise operations, linear chains) as nested
    tasks where ``_nested`` can; any other node as it is."""
    from dask._task_spec import GraphNode, Task, TaskRef, _execute_subgraph

    if type(node) is not Task or node.func is not _execute_subgraph or node.kwargs:
        return node
    inner, outkey, inkeys, *inputs = node.args
    if (type(inner) is not dict or outkey not in inner or len(inputs) != len(inkeys)
            or not all(isinstance(value, (TaskRef, GraphNode)) for value in inputs)):
        return node
    return _nested(inner, outkey, node.key, dict(zip(inkeys, inputs))) or node


def topological_order(graph: Mapping) -> list:
    """The graph's keys, each after the keys it reads (a ``ValueError`` for a cycle)."""
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
