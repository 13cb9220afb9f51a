"""Running dask graphs on the cluster: ``Executor.get`` is a dask scheduler.

Each graph node travels as the task's function (dask is needed on the workers, as with any
library the tasks use); its inputs are the futures of its dependencies, so data moves between
workers, never through the client. The graph is read and its chains fused by ``dask_nodes``;
here it is ordered, packed and sent, in parts when it is large.
"""
from __future__ import annotations

import contextlib
import itertools
import pickle
import sys
from types import FunctionType
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dist_protocol import task_context
from dist_protocol.key_names import wire_key
from dist_protocol.messages import Submit, TaskSpec
from dist_protocol.serialize import (BYTES_OUT_OF_BAND, KeyRef, Payload, pickle_dumps,
                                     pickle_dumps_overriding)

from .actors import actor_options
from .core import operations
from .dask_annotate import TASK_ANNOTATIONS, enclosing, under_given
from .dask_defaults import cluster_shuffle
from .dask_stores import refuse_stores_into_local_arrays
from .dask_nodes import (fuse_chains, large_bytes_apart, literal_bytes_apart, read_graph,
                         topological_order, unfused)
from .future import Future
from .tasks import TaskBuilder

if TYPE_CHECKING:
    from .core.client import ClientCore
    from .core.submitting import Submitter


def flatten_keys(keys: Any) -> Iterator:
    """The keys in dask's nested lists of keys, in order (a tuple is a key itself)."""
    if isinstance(keys, list):
        for k in keys:
            yield from flatten_keys(k)
    else:
        yield keys


def _nest(keys: Any, values: dict) -> Any:
    """dask's ``get`` contract: a list of keys gives a tuple of values, nested alike (a tuple
    is a key itself, as ``('x', 0)``)."""
    if isinstance(keys, list):
        return tuple(_nest(k, values) for k in keys)
    return values[keys]


def _in_shape(keys: Any, futures: dict) -> Any:
    """The futures of ``keys``, a list for a list, as dask's ``Client.get(sync=False)``."""
    if isinstance(keys, list):
        return [_in_shape(k, futures) for k in keys]
    return futures[keys]


def get(core: ClientCore, dsk: Mapping, keys: Any, workers: Any = None,
        allow_other_workers: bool = False, resources: Any = None, retries: int = 0,
        priority: int = 0, sync: bool = True, actors: Any = None, **kwargs: Any) -> Any:
    """Compute ``keys`` of the dask graph ``dsk`` on the cluster (dask's scheduler signature).

    ``workers`` and ``resources`` restrict every task, or, by key (``keyed``), the tasks of
    those keys; ``actors`` makes tasks actors (``actor_keys``);
    other keywords dask passes to schedulers are ignored. The graph's futures are released
    before this returns, also when it raises: an exception kept alive (by a REPL, say) must
    not keep them, or a later graph reusing these key names would find the old results or
    errors. ``sync=False`` returns the futures of
    ``keys`` instead (in their shape), as dask's ``Client.get`` does.
    """
    if not sync:
        return _in_shape(keys, _submit_for_get(core, dsk, keys, workers, allow_other_workers,
                                               resources, retries, priority, actors))
    futures: dict[Hashable, Future] = {}
    try:
        futures = _submit_for_get(core, dsk, keys, workers, allow_other_workers, resources,
                                  retries, priority, actors)
        wanted = list(dict.fromkeys(flatten_keys(keys)))
        # In a task (``compute()`` there), the wait gives the task's thread back, as the
        # client's other waits do: tasks computing graphs could otherwise take every thread.
        with task_context.slot_given_back():
            values = core.run(operations.gather(core, {key: futures[key] for key in wanted}))
        return _nest(keys, values)
    finally:
        for future in futures.values():
            future.release()
        futures.clear()
        # Not overtaken by the next graph's submit, as releases otherwise may be: the
        # center keeps the inputs of a held output, and would take them for the next
        # graph's tasks of the same names (dask's names stay when an optimization changes
        # what runs under them).
        with core.lock:
            core.state.release_before_later_submits()


def _submit_for_get(core: ClientCore, dsk: Any, keys: Any, workers: Any,
                    allow_other_workers: bool, resources: Any, retries: int,
                    priority: int, actors: Any = None) -> dict[Hashable, Future]:
    """``get``'s graph submitted: the futures of the keys wanted."""
    graph, persisted = read_graph(dsk)
    wanted = list(dict.fromkeys(flatten_keys(keys)))
    for key in wanted:
        if key not in graph and key not in persisted:
            raise KeyError(key)
    annotated = annotated_options(dsk, graph)
    making_actors = actor_keys(core, graph, actors)
    if not keyed(workers) and not keyed(resources, resources=True) and not annotated:
        # (per-key options name the keys as given; an actor is read as itself)
        graph = fuse_chains(graph, [*wanted, *making_actors])
    return submit_graph(core, graph, wanted, restricted(
        graph, workers, allow_other_workers, resources, retries, priority, annotated,
        making_actors), persisted)


def compute(core: ClientCore, collections: list, optimize_graph: bool = True,
            workers: Any = None, allow_other_workers: bool = False, resources: Any = None,
            retries: int = 0, priority: int = 0, actors: Any = None) -> list[Future]:
    """Futures for dask collections' values, computed on the cluster as ``dask.compute``
    would: one graph for all of them (shared parts run once), the same optimizations (none
    of the low-level ones without ``optimize_graph``), then each collection's own finalize
    step, as a task too. The restrictions and options are ``get``'s."""
    from dask._expr import FinalizeCompute
    from dask.base import collections_to_expr

    if not collections:
        return []
    with cluster_shuffle():
        expr = FinalizeCompute(
            collections_to_expr(list(collections), optimize_graph)).optimize()
    keys = list(flatten_keys(expr.__dask_keys__()))
    if len(keys) != len(collections):
        raise ValueError(f"{len(collections)} collections gave {len(keys)} output keys")
    graph, persisted = read_graph(expr)
    annotated = annotated_options(expr, graph)
    making_actors = actor_keys(core, graph, actors)
    if not keyed(workers) and not keyed(resources, resources=True) and not annotated:
        # (per-key options name the keys as given; an actor is read as itself)
        graph = fuse_chains(graph, [*keys, *making_actors])
    futures = submit_graph(core, graph, keys, restricted(
        graph, workers, allow_other_workers, resources, retries, priority, annotated,
        making_actors), persisted)
    return [futures[key] for key in keys]


def annotated_options(dsk: Any, graph: Mapping) -> dict[Hashable, dict[str, Any]]:
    """The options ``dask.annotate`` gave the graph's tasks, by key (``TASK_ANNOTATIONS``
    only). dask keeps annotations through its own graph optimization where it can: those of
    delayed values always, those of arrays and bags without ``optimize_graph``, none of
    dataframes; dask.distributed reads the same."""
    read = getattr(dsk, "__dask_annotations__", None)
    if read is None:  # a plain graph, as ``get`` may be given
        return {}
    by_key: dict[Hashable, dict[str, Any]] = {}
    for kind, values in read().items():
        if kind not in TASK_ANNOTATIONS:
            continue
        for key, value in values.items():
            if value is not None and key in graph:
                by_key.setdefault(key, {})[kind] = value
    return by_key


def actor_keys(core: ClientCore, graph: Mapping, actors: Any) -> set[Hashable]:
    """The keys of ``graph`` whose tasks make actors, named as dask's ``compute``, ``persist``
    and ``get`` take ``actors=``: ``True`` (every task), a collection or a key, a list, tuple
    or set of them, or a dict of keys to bools. A collection's keys that the graph no longer
    has (optimized away) make none; a key given by name must be in it."""
    if actors is None or actors is False:
        return set()
    if actors is True:
        named: list = list(graph)
    elif isinstance(actors, dict):
        named = [key for key, wanted in actors.items() if wanted]
    elif isinstance(actors, (list, set, frozenset)) or (
            isinstance(actors, tuple) and actors not in graph):
        named = list(actors)
    else:
        named = [actors]
    keys: set[Hashable] = set()
    for item in named:
        if hasattr(item, "__dask_keys__"):
            keys.update(key for key in flatten_keys(item.__dask_keys__()) if key in graph)
        elif item in graph:
            keys.add(item)
        else:
            raise ValueError(f"actors= names a key the graph does not have: {item!r}")
    if keys:
        actor_options(core, {}, True, 0)  # (refused here if the center hosts none)
    return keys


def keyed(option: Any, resources: bool = False) -> bool:
    """Whether a ``workers=`` or ``resources=`` option names the tasks it is for, by key:
    ``workers`` as a dict; ``resources`` as a dict of dicts (``{key: {"GPU": 1}}``), since a
    dict of amounts (``{"GPU": 1}``) is what every task needs, as dask's ``compute``,
    ``persist`` and ``get`` take it."""
    if not isinstance(option, dict):
        return False
    return not resources or any(isinstance(value, Mapping) for value in option.values())


def restricted(graph: Mapping, workers: Any = None, allow_other_workers: bool = False,
               resources: Any = None, retries: int = 0, priority: int = 0,
               annotated: Mapping[Hashable, Mapping[str, Any]] | None = None,
               actors: Collection[Hashable] = ()) -> Callable[[Hashable], dict]:
    """Each task's options: ``workers``/``resources`` for all, or by key (``keyed``); a key's
    ``annotated`` options (``annotated_options``) over those given for all, as dask.distributed
    lets a task's own annotations win; the tasks of ``actors`` (keys) make actors. Options
    the call leaves unset come from an enclosing ``dask.annotate`` block (``dask_annotate``):
    a collection optimized inside the block has them as annotations of its own already, a
    plain graph given to ``get`` has not.
    """
    block = enclosing()
    if block:
        given = under_given({"workers": workers, "resources": resources, "priority": priority,
                             "retries": retries, "allow_other_workers": allow_other_workers},
                            block)
        workers, resources, priority = given["workers"], given["resources"], given["priority"]
        retries, allow_other_workers = given["retries"], given["allow_other_workers"]

    workers_by_key, resources_by_key = keyed(workers), keyed(resources, resources=True)

    def of_key(value: Any, is_by_key: bool, key: Hashable) -> Any:
        return value.get(key) if is_by_key else value

    def options_of(key: Hashable) -> dict:
        own = annotated.get(key, {}) if annotated else {}
        try:
            return TaskBuilder.options(
                own.get("workers", of_key(workers, workers_by_key, key)),
                own.get("priority", priority),
                own.get("retries", retries), own.get("allow_other_workers", allow_other_workers),
                own.get("resources", of_key(resources, resources_by_key, key)))
        except (TypeError, ValueError) as exc:
            if not own:
                raise
            raise type(exc)(f"dask.annotate({', '.join(f'{k}={v!r}' for k, v in own.items())}) "
                            f"of the task {key!r}: {exc}") from None

    unknown = [key for value, is_by_key in ((workers, workers_by_key),
                                            (resources, resources_by_key)) if is_by_key
               for key in value if key not in graph]
    if unknown:
        raise ValueError(f"restrictions name keys the graph does not have: {unknown!r}")
    same = TaskBuilder.options(None if workers_by_key else workers, priority,
                               retries, allow_other_workers,
                               None if resources_by_key else resources)
    per_key = {key: options_of(key)
               for key in graph if (workers_by_key and key in workers)
               or (resources_by_key and key in resources)
               or (annotated and key in annotated)}
    for key in actors:
        per_key[key] = {**per_key.get(key, same), "actor": True, "max_restarts": None}
    return lambda key: per_key.get(key, same)


def submit_graph(core: ClientCore, graph: dict, wanted: Collection[Hashable] | None = None,
                 options_of: Callable[[Hashable], dict] | None = None,
                 persisted: Mapping[Hashable, Future] | None = None) -> dict[Hashable, Future]:
    """Submit every node of a graph (as ``read_graph`` reads it) in one message; a future
    per key, or, when ``wanted`` names the keys the caller will read, per wanted key only.

    The other keys are only inputs: the center frees each as soon as its dependents have run,
    as dask's scheduler does, instead of keeping every intermediate result of the graph in
    memory (and spilling it) until the caller drops its futures.

    Futures of this executor inside the graph (``delayed(f)(future)``, ``{'y': (f, future)}``,
    ``{'y': future}``) are its inputs by key: their values go from worker to worker.
    ``persisted``: the graph's persisted keys (``read_graph``), a future each.
    """
    refuse_stores_into_local_arrays(graph)
    order = topological_order(graph)
    priorities = _dask_priorities(graph)
    if priorities:
        # Sent in dask's order too (a valid order: dask ranks inputs before their users), so
        # the center, which places tasks as they arrive while workers have room, starts them
        # in that order, not just queues them so.
        order.sort(key=lambda key: priorities.get(key, 0))
    keep = None if wanted is None else set(wanted)
    futures: dict[Hashable, Future] = {}
    external = _external_inputs(core, graph)
    if options_of is None:
        unrestricted = TaskBuilder.options(None, 0, 0, False, None)
        options_of = lambda key: unrestricted
    tasks: list[TaskSpec] = []
    # (the executor runs; whether a node holds code is known once it is pickled, part by part
    # as the graph is sent: a node that does states this Python, and the center keeps it to
    # workers on it -- erring it, naming both Pythons, when none is there -- while the rest
    # run on any worker)
    core.check_pickled_code(TaskBuilder.options(), code=False)
    wanted_names = None if keep is None else {wire_key(key) for key in keep}
    parts = _Parts(core, graph, order, wanted_names) if _center_runs_parts(core) else None
    with core.lock:
        # A new graph reusing a key name that failed gets a fresh result.
        new = set(core.state.keys_to_submit((wire_key(key) for key in order),
                                            renew=("error", "lost", "cancelled")))
        # A key this client knows already (held, or being released) is held on until the
        # graph is submitted, from now: a release still on its way must not free an input.
        for key in order:
            if wire_key(key) not in new:
                futures[key] = core.future(wire_key(key))
    # The packing goes on without the client's lock: its I/O thread takes it to send each
    # part and to hear of the results of those sent, so holding it here kept every part but
    # the first in the outbox until the whole graph was packed, and the workers idle.
    submitter = core.submitter
    build = submitter.task
    with _ended_on_error(parts):
        for at, key in enumerate(order):
            if parts is not None and at == parts.end:
                parts.send(tasks, at)
            node = graph[key]
            inputs = {dep: futures[dep] if dep in futures else
                      external[dep] if dep in external else KeyRef(wire_key(dep))
                      for dep in node.dependencies}
            name = wire_key(key)
            fresh = name in new
            if fresh:
                new.discard(name)
                task_options = options_of(key)
                if priorities:
                    given, rank = task_options["priority"], priorities.get(key, 0)
                    task_options = {**task_options, "priority":
                                    ranked(given, rank, len(order)) if given else -rank}
                # A node without inputs is called without its (empty) map of values, which
                # dask's nodes take as their default: no arguments' payload to carry and keep.
                payload = _node_payload(submitter, large_bytes_apart(unfused(node)))
                tasks.append(build(name, payload, (inputs,) if inputs else (), {},
                                   task_options, node))
            if key not in futures and (keep is None or key in keep or not fresh):
                futures[key] = core.future(name)
        for key, future in (persisted or {}).items():
            futures[key] = core.future(future.name)
        if parts is not None:
            parts.send(tasks, len(order), last=True)
        else:
            core.send(*graph_submits(tasks, None if wanted_names is None else list(wanted_names),
                                     _center_takes_parts(core)))
    return futures


# Priorities travel as 64-bit integers.
PRIORITY_LIMIT = 2**62


def ranked(priority: int, rank: int, tasks: int) -> int:
    """A graph's task's priority on the wire: the priority it was given first, then its
    rank in dask's order (0 to ``tasks`` - 1, the first to run first), as dask.distributed
    orders tasks: a task annotated with a higher priority runs before the rest of its graph
    whatever their order, and a graph given a priority above 0 before work given none."""
    return max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, priority * tasks - rank))


# A graph of more tasks than this goes to a center that runs parts as they arrive (feature
# ``graph-parts-run``) in parts as it is packed, each this many times the one before: the
# workers start on the graph's first tasks, in dask's order, while the rest is pickled.
FIRST_PART_TASKS = 32
PART_GROWTH = 4


class _Parts:
    """A graph's tasks sent in growing parts as ``submit_graph`` packs them (in its order, so
    each task's inputs come in its part or an earlier one). A task that only later parts read
    is not needed at the center before they arrive: unless the caller wants it anyway, it is
    wanted for the time being (a future of its key, released once the part holding its last
    reader is sent), so that it starts early and its result is kept for its readers."""

    def __init__(self, core: ClientCore, graph: Mapping, order: list,
                 wanted: set[str] | None) -> None:
        self.core, self.order, self.wanted = core, order, wanted
        self.id = next(_graph_ids)
        self.end = FIRST_PART_TASKS if len(order) > FIRST_PART_TASKS else -1
        self.start = 0  # where in the order the part being packed begins
        # Keys wanted only until their last reader is sent: (where it is in the order, future).
        self.for_later: list[tuple[int, Future]] = []
        self.last_read: dict[Hashable, int] = {}  # key -> where in the order its last reader is
        if self.end > 0 and wanted is not None:
            at = {key: i for i, key in enumerate(order)}
            last_read = self.last_read
            for key, node in graph.items():
                reader = at[key]
                for dep in node.dependencies:
                    if dep in at and reader > last_read.get(dep, -1):
                        last_read[dep] = reader

    def send(self, tasks: list[TaskSpec], at: int, last: bool = False) -> None:
        """Send the tasks packed since the last part (those of the order up to ``at``), and
        take them out of ``tasks``: once sent, the client has no use for their specs and
        pickles (a million-task graph's: a few hundred megabytes)."""
        part = tasks[:]
        tasks.clear()
        wanted = self.wanted
        if wanted is not None and not last:
            in_part = {task.key for task in part}
            last_read = self.last_read
            early = {name: last_read[key] for key in self.order[self.start:at]
                     if last_read.get(key, -1) >= at
                     and (name := wire_key(key)) in in_part and name not in wanted}
            self.for_later += [(last, self.core.future(name)) for name, last in early.items()]
            wanted = wanted | early.keys()
        whole = last and not self.start  # (a graph of one part: a plain submit)
        self.start = at
        self.end = at + min(at * (PART_GROWTH - 1), PART_TASKS)
        if part or last:
            names = None if wanted is None else [t.key for t in part if t.key in wanted]
            self.core.send(*graph_submits(part, names, True, graph=None if whole else self.id,
                                          last=last))
        self.release(len(self.order) if last else at)

    def release(self, sent: int) -> None:
        """Let go of the keys wanted for later whose readers are all among the first ``sent``
        of the order (sent: the center holds the result for them now)."""
        kept = []
        for last, future in self.for_later:
            if last < sent:
                future.release()
            else:
                kept.append((last, future))
        self.for_later = kept

    def abandon(self) -> None:
        """The graph could not be packed whole: its parts sent so far are ended (the center
        forgets what nothing else wants or needs) and the keys wanted for later let go."""
        if self.start:
            # (Without a connection there is nothing to end: a center forgets the parts of a
            # client that left, and the error being raised is the one to see.)
            with contextlib.suppress(Exception):
                self.core.send(Submit(tasks=[], small_values=True, graph=self.id, more=False,
                                      wanted=[]))
        self.release(len(self.order))


@contextlib.contextmanager
def _ended_on_error(parts: _Parts | None) -> Iterator[None]:
    try:
        yield
    except BaseException:
        if parts is not None:
            parts.abandon()
        raise


# What a graph's submit carries at most where the center takes a graph in parts: the center
# holds a whole message while decoding it (about 2 KB a task of a dask graph, beside what it
# keeps of each), so a graph of a million tasks in one message would cost it a gigabyte more.
# A part of this many tasks goes in a batch of its own (``MAX_FRAMES_PER_BATCH``: two frames a
# task); one of this many bytes of payloads (nodes holding data) is cut short.
PART_TASKS = 5_000
PART_BYTES = 32 * 2**20
_graph_ids = itertools.count(1)


def graph_submits(tasks: list[TaskSpec], wanted: list[str] | None, in_parts: bool,
                  part_tasks: int = PART_TASKS, part_bytes: int = PART_BYTES,
                  graph: int | None = None, last: bool = True) -> list[Submit]:
    """The submits of a graph's tasks (in an order where inputs come before their readers):
    one, or, ``in_parts``, one per ``part_tasks`` tasks or ``part_bytes`` bytes of payloads
    (whichever comes first; at least a task), sharing a graph id, each but the last marked
    ``more`` (protocol feature ``graph-parts``). ``wanted``: as for ``Submit``.

    ``graph``: these tasks are some of that graph's, which is sent in parts however few they
    are; unless ``last``, more of its parts follow these (all marked ``more``)."""
    if not in_parts:
        return [Submit(tasks=tasks, small_values=True, wanted=wanted)]
    cuts = [0]
    size = 0
    for at, task in enumerate(tasks):
        if at - cuts[-1] >= part_tasks or (size >= part_bytes and at > cuts[-1]):
            cuts.append(at)
            size = 0
        for payload in (task.function, task.args):
            if isinstance(payload, Payload):
                size += payload.nbytes
    if len(cuts) == 1 and graph is None:
        return [Submit(tasks=tasks, small_values=True, wanted=wanted)]
    cuts.append(len(tasks))
    if graph is None:
        graph = next(_graph_ids)
    keep = None if wanted is None else set(wanted)
    parts = []
    for start, end in zip(cuts, cuts[1:]):
        part = tasks[start:end]
        parts.append(Submit(
            tasks=part, small_values=True, graph=graph, more=not last or end < len(tasks),
            wanted=None if keep is None else [t.key for t in part if t.key in keep]))
    return parts


def _center_takes_parts(core: ClientCore) -> bool:
    center = core.center
    return center is not None and "graph-parts" in center.features


def _center_runs_parts(core: ClientCore) -> bool:
    center = core.center
    return (center is not None and "graph-parts" in center.features
            and "graph-parts-run" in center.features)


def _node_payload(submitter: Submitter, node: Any) -> Payload:
    """A graph node's pickle. Nodes are dask's ``Task`` objects around importable functions
    nearly always, which the standard pickler writes by reference many times faster than
    cloudpickle walks them (a 337-task array graph: most of its submission time). Anything
    it cannot write, or would write by a reference the workers cannot resolve (the user's
    ``__main__``; modules registered to travel by value), goes through cloudpickle: the
    functions and classes among it alone where that is enough (``_by_value_where_needed``),
    else the whole node. An array's data (a literal in the graph, ``da.from_array``'s
    one chunk) travels out of band, as further frames, as a task's arguments' do: in
    band, a GiB array was copied into the pickle (7.8 s on the client) and out of it again
    on the worker, under the interpreter's lock."""
    if not _by_value_modules():
        buffers: list[pickle.PickleBuffer] = []
        try:
            head = pickle_dumps(node, buffer_callback=buffers.append)
        except Exception:  # noqa: BLE001 -- lambdas, closures...: cloudpickle's case
            head = None
        if head is not None and len(head) >= BYTES_OUT_OF_BAND:
            # A large literal written in band, deeper than ``large_bytes_apart`` looks.
            buffers.clear()
            head = pickle_dumps_overriding(node, literal_bytes_apart, buffers.append)
        if head is not None and b"__main__" not in head:
            return Payload("pickle", [head, *(buffer.raw() for buffer in buffers)])
        try:
            buffers.clear()
            head = _by_value_where_needed(submitter, node, buffers.append)
            return Payload("pickle", [head, *(buffer.raw() for buffer in buffers)])
        except Exception:  # noqa: BLE001 -- anything else it cannot write: cloudpickle's
            pass
    return submitter.function_payload(node)


def _by_value_where_needed(submitter: Submitter, node: Any,
                           buffer_callback: Callable[[pickle.PickleBuffer], Any]) -> bytes:
    """``node``'s pickle by the standard pickler, but each function or class in it that the
    workers could not import by name (a lambda, a nested function, the user's ``__main__``)
    written as its cloudpickle, made once while it lives (``function_payload``). The twenty
    outputs of a shuffle each hold the same ``map_partitions`` lambda: cloudpickle walked it,
    and each node around it, twenty times (0.7-0.9 ms a node, against 0.03 ms for a node
    without one). Buffers and large bytes literals go out of band, as in the plain pickle."""
    def by_value(obj: Any) -> Any:
        if (type(obj) is FunctionType or isinstance(obj, type)) and not _by_name(obj):
            payload = submitter.function_payload(obj)
            if len(payload.frames) == 1:
                return pickle.loads, (bytes(payload.frames[0]),)
        return literal_bytes_apart(obj)

    return pickle_dumps_overriding(node, by_value, buffer_callback)


def _by_name(obj: Any) -> bool:
    """Whether the standard pickler would write ``obj`` (a function or class) by a name the
    workers resolve: its module imported here (so importable, as a worker's is), not the
    user's ``__main__``, and its qualified name leading back to it."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    name = getattr(obj, "__qualname__", None)
    if module is None or module.__name__ == "__main__" or not isinstance(name, str):
        return False
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj


def _by_value_modules() -> bool:
    """Whether any module is registered with ``cloudpickle.register_pickle_by_value`` (assumed
    so if cloudpickle no longer says)."""
    import cloudpickle
    return bool(getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", True))


def _dask_priorities(graph: Mapping) -> dict[Hashable, int]:
    """dask's own order of the graph's tasks (``dask.order``: finish what is started before
    starting more, so intermediate results are released early), as the rank of each key;
    empty when dask cannot order it. Without it tasks run in submission order, breadth first:
    a shuffle of data larger than memory would read every input before combining any."""
    try:
        from dask.order import order
        return {key: rank for key, rank in order(graph).items()}
    except Exception:  # noqa: BLE001 -- an order is an optimisation, never a reason to fail
        return {}


def _external_inputs(core: ClientCore, graph: Mapping) -> dict[Hashable, Future]:
    """Futures for the keys the graph's tasks depend on that it does not define: each must
    be a future this executor holds, else the graph cannot run (a ValueError, up front)."""
    missing = {dep for node in graph.values() for dep in node.dependencies} - graph.keys()
    external: dict[Hashable, Future] = {}
    unknown = []
    with core.lock:
        for dep in missing:
            # A persisted collection's keys are often tuples: ``wire_key`` names them all.
            if core.state.holds(wire_key(dep)):
                external[dep] = core.future(wire_key(dep))
            else:
                unknown.append(dep)
    if unknown:
        names = ", ".join(map(repr, sorted(unknown, key=repr)))
        raise ValueError(f"the dask graph depends on {names}, which it does not define "
                         "(nor is any a future of this executor)")
    return external


@contextlib.contextmanager
def as_dask_scheduler(scheduler: Any) -> Iterator[None]:
    """``scheduler``: an executor's ``get``."""
    import dask
    with dask.config.set(scheduler=scheduler), cluster_shuffle():
        yield
