"""What the center records about each task and each worker (``CenterState`` owns them), the
task states, and the read-only view of the center that the pure helpers take."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Union, get_args

from dist_protocol.messages import TaskErred, TaskSpec
from dist_protocol.serialize import Payload

from .durations import TaskDurations
from .ready import ReadyQueue

# A task's state at the center, defined here once. The transition table in ``state`` names
# which of them lead to which; the spec's lifecycle diagram is drawn from that table.
#   released    lineage only: no data, kept while a dependent may need it recomputed
#   waiting     some input is not in memory yet
#   queued      ready, no worker slot (or resource) free yet
#   no-worker   ready, but no running worker may take it
#   processing  sent to one worker
#   memory      held by at least one worker
#   erred       it (or an input) failed; the error is kept for clients that ask
#   lost        scattered data whose every copy is gone, and what waited on it
#   scattering  a client is pushing its data to workers
#   forgotten   not a state a task is in: the center drops the record
TaskStateName = Literal["released", "waiting", "queued", "no-worker", "processing", "memory",
                        "erred", "lost", "scattering", "forgotten"]
STATES: tuple[TaskStateName, ...] = tuple(s for s in get_args(TaskStateName)
                                         if s != "forgotten")

# Most tasks never get a dependent, a second holder or a second client. Until they do, they
# share this empty set rather than hold four of their own (about 900 bytes a task).
NONE: frozenset = frozenset()

# A task's dependents and the inputs it waits for: nearly always one to a few keys (a graph's
# task feeds one task of the next level and waits for the few below it). Up to SMALL of them
# are a tuple (48-120 bytes), not a set (216 bytes for one member, 728 for sixteen); past
# that, a set. ``added`` and ``removed`` return the collection to keep, which may be another
# object than the one given.
SMALL = 8
Keys = Union[tuple[str, ...], set[str], frozenset]


def added(current: Keys, item: str) -> Keys:
    """``current`` with ``item`` in it."""
    if type(current) is set:
        current.add(item)
        return current
    if not current:
        return (item,)
    if item in current:
        return current
    if len(current) < SMALL:
        return (*current, item)  # type: ignore[misc]
    return {*current, item}


def removed(current: Keys, item: str) -> Keys:
    """``current`` without ``item``."""
    if type(current) is set:
        current.discard(item)
        return current
    if item not in current:
        return current
    if len(current) == 1:
        return NONE
    at = current.index(item)  # type: ignore[union-attr]
    return current[:at] + current[at + 1:]  # type: ignore[index]


class Singletons:
    """One shared ``frozenset({item})`` per item. Nearly every task is wanted by one client
    and held by one worker: tasks share that client's (that worker's) set, about 220 bytes a
    task less than a set of their own each. ``joined`` and ``left`` give a task its own set
    once a second member comes, and the shared empty set once the last one goes."""

    def __init__(self) -> None:
        self._sets: dict[str, frozenset] = {}

    def of(self, item: str) -> frozenset:
        alone = self._sets.get(item)
        if alone is None:
            alone = self._sets[item] = frozenset((item,))
        return alone

    # (Calling the object goes through its type's slot, which costs more than calling a
    # method: paths taken once a task call ``of``.)
    __call__ = of

    def forget(self, item: str) -> None:
        """The client or worker is gone: new tasks will not name it (those still naming it
        keep their set)."""
        self._sets.pop(item, None)


def joined(current: set[str] | frozenset, item: str, alone: Singletons) -> set[str] | frozenset:
    """``current`` with ``item`` in it; a shared set is replaced, never changed."""
    if not current:
        return alone(item)
    if item in current:
        return current
    if type(current) is frozenset:
        return {*current, item}
    current.add(item)  # type: ignore[union-attr]
    return current


def left(current: set[str] | frozenset, item: str) -> set[str] | frozenset:
    """``current`` without ``item``; a shared set is replaced, never changed."""
    if item not in current:
        return current
    if type(current) is frozenset or len(current) == 1:
        return NONE
    current.discard(item)  # type: ignore[union-attr]
    return current


# Work not done yet: a task in one of these will still run.
ACTIVE: frozenset[TaskStateName] = frozenset({"waiting", "queued", "no-worker", "processing"})


def key_prefix(key: str) -> str:
    """The function name a key starts with: ``inc`` for ``inc-<hash>``; for a dask tuple key
    (``"('sum-aggregate-<token>', 0)"``) the name in its first element, as dask shows it."""
    name = key[2:].split(key[1], 1)[0] if key[:2] in _TUPLE_OPENINGS else key
    head, dash, _ = name.rpartition("-")
    return (head if dash else name) or key


_TUPLE_OPENINGS = frozenset({"('", '("'})


# The dashboard and /metrics count tasks per prefix, and Prometheus keeps a series per label
# value forever: keys named one per row (``key=f"row_{i}"``) made 20,000 series after two
# maps. The first MAX_PREFIXES distinct prefixes are counted under their own name, any later
# one under OTHER_PREFIX, for the life of the center (counters must not move between labels).
MAX_PREFIXES = 1000
OTHER_PREFIX = "(other)"  # not a Python name, so no function's prefix


class PrefixNames:
    """The name a key's tasks are counted under: its prefix, or OTHER_PREFIX past the cap."""

    def __init__(self, limit: int = MAX_PREFIXES):
        self.limit = limit
        # Each prefix once, as the string every task of it shares (not a copy per task).
        self.known: dict[str, str] = {}

    def of(self, key: str) -> str:
        if key[:2] in _TUPLE_OPENINGS:
            prefix = key_prefix(key)
        else:  # (``key_prefix`` of a plain key, written out: asked once a task submitted)
            head, dash, _ = key.rpartition("-")
            prefix = (head if dash else key) or key
        known = self.known.get(prefix)
        if known is not None:
            return known
        if len(self.known) < self.limit:
            self.known[prefix] = prefix
            return prefix
        return OTHER_PREFIX

    __call__ = of  # (as ``Singletons``: ``of`` where it is called once a task)


class Rare:
    """What few tasks ever have: a failure, a loss, retries taken, deaths of the workers that
    ran it, an actor's host. A task gets one the first time it needs any of these; the rest
    do without the room (a million tasks in flight, 48 bytes each)."""

    __slots__ = ("died_on", "retries_left", "error", "lost_message", "actor_host", "restarts")

    def __init__(self) -> None:
        self.died_on: tuple[str, ...] = ()
        self.retries_left: int | None = None  # None: as many as its spec allows
        self.error: TaskErred | None = None
        self.lost_message = ""
        self.actor_host: str | None = None
        self.restarts = 0


class TaskState:
    __slots__ = ("key", "spec", "deps", "dependents", "state", "waiting_on", "who_has",
                 "nbytes", "type", "type_pickled", "processing_on", "wanted_by", "order",
                 "prefix", "counts", "rare")

    def __init__(self, key: str, spec: TaskSpec | None, seq: int, prefix: str | None = None):
        self.key = key
        self.prefix = key_prefix(key) if prefix is None else prefix  # what it is counted under
        self.counts: dict[str, int] | None = None  # its prefix's tasks by state, once it moved
        self.spec = spec  # None: scattered data (no lineage to compute it from)
        # The spec's own list of inputs (never changed through this name, only replaced),
        # not a copy of it: a tuple of its own was 40 bytes and more a task.
        self.deps: Sequence[str] = spec.deps if spec and spec.deps else ()
        self.dependents: Keys = NONE
        self.state: TaskStateName = "released"
        self.waiting_on: Keys = NONE
        self.who_has: set[str] | frozenset = NONE
        self.nbytes = 0
        self.type = ""
        # The value's class as the worker pickled it (feature result-types): passed on to
        # clients, never unpickled here; one bytes object per class (``same_pickled_type``).
        self.type_pickled: bytes | None = None
        self.processing_on: str | None = None
        self.wanted_by: set[str] | frozenset = NONE
        self.order = seq  # arrival: among tasks of one priority, the earlier runs first
        self.rare: Rare | None = None

    def _rare(self) -> Rare:
        rare = self.rare
        if rare is None:
            rare = self.rare = Rare()
        return rare

    @property
    def scattered(self) -> bool:
        return self.spec is None

    @property
    def died_on(self) -> tuple[str, ...]:  # workers that died while running it
        return () if self.rare is None else self.rare.died_on

    @died_on.setter
    def died_on(self, value: tuple[str, ...]) -> None:
        self._rare().died_on = value

    @property
    def retries_left(self) -> int:
        left = None if self.rare is None else self.rare.retries_left
        if left is None:
            return self.spec.retries if self.spec is not None else 0
        return left

    @retries_left.setter
    def retries_left(self, value: int) -> None:
        self._rare().retries_left = value

    @property
    def error(self) -> TaskErred | None:  # why it erred, for clients that ask
        return None if self.rare is None else self.rare.error

    @error.setter
    def error(self, value: TaskErred | None) -> None:
        self._rare().error = value

    @property
    def lost_message(self) -> str:
        return "" if self.rare is None else self.rare.lost_message

    @lost_message.setter
    def lost_message(self, value: str) -> None:
        self._rare().lost_message = value

    @property
    def actor_host(self) -> str | None:  # an actor's: the worker its object lives on
        return None if self.rare is None else self.rare.actor_host

    @actor_host.setter
    def actor_host(self, value: str | None) -> None:
        self._rare().actor_host = value

    @property
    def restarts(self) -> int:  # an actor's: times it was made again after its worker died
        return 0 if self.rare is None else self.rare.restarts

    @restarts.setter
    def restarts(self, value: int) -> None:
        self._rare().restarts = value

    def __repr__(self) -> str:
        return f"<TaskState {self.key} {self.state}>"


class WorkerInfo:
    __slots__ = ("address", "name", "nthreads", "memory_limit", "processing", "has_what",
                 "nbytes", "status", "metrics", "resources", "environment", "long_running",
                 "ahead", "brief", "sends_msgpack_values", "pickle_tag", "memory_blame",
                 "memory_at_restart", "terminated_blame", "nanny")

    def __init__(self, address: str, name: str, nthreads: int, memory_limit: int,
                 resources: dict[str, float] | None = None):
        self.address = address
        self.resources: dict[str, float] = dict(resources or {})  # what it has in all
        self.name = name
        self.nthreads = max(1, nthreads)
        self.memory_limit = memory_limit
        self.processing: dict[str, None] = {}  # in the order they were sent
        # Of those, tasks running without a thread slot (they seceded while they wait on
        # tasks they submitted): they do not count against the worker's threads.
        self.long_running: set[str] = set()
        # Of those, tasks sent before their inputs (being computed there) finished, which it
        # keeps waiting (protocol feature dispatch-ahead); None: it did not announce the feature.
        self.ahead: set[str] | None = None
        # Of those, tasks with inputs whose kind is known to finish in a moment (see
        # ``placement.is_brief``): like a task waiting ahead, one takes no slot from the tasks
        # without inputs it is sent (a shuffle's splits, twenty a read, held the next read back).
        self.brief: set[str] = set()
        # It can send a small value as msgpack too (protocol feature small-values-msgpack).
        self.sends_msgpack_values = False
        self.has_what: set[str] = set()
        self.nbytes = 0
        self.status = "running"
        self.metrics: dict = {}
        self.environment: dict | None = None  # Python and package versions, as it stated them
        # Whose pickled code it may run ("cpython-3.11"); None: it did not say.
        self.pickle_tag: str | None = None
        # The values it blamed as it restarted for memory (key -> bytes), which its leaving
        # counts as a death of (protocol feature memory-restart); None: no such restart.
        self.memory_blame: dict[str, int] | None = None
        # The worker process's memory as it said so (bytes; 0: not said).
        self.memory_at_restart = 0
        # The tasks it named as it stopped for a SIGTERM its nanny did not send (those that
        # may have sent it), which its leaving counts as a death of (protocol feature
        # task-terminated); empty: no such stop.
        self.terminated_blame: frozenset[str] = frozenset()
        # The nanny it runs under, the same across its restarts (feature restart-workers);
        # None: it has none (or did not say), and cannot be restarted by restart_workers.
        self.nanny: str | None = None

    def runs_pickles_of(self, tag: str | None) -> bool:
        """Whether it may run a task pickled with ``tag`` (None: nothing pickled, an import
        path with msgpack arguments, which any worker runs)."""
        return tag is None or self.pickle_tag is None or tag == self.pickle_tag

    @property
    def occupied(self) -> int:
        """Tasks sent to it that hold (or wait for) one of its thread slots. A task sent ahead
        takes the slot of its input when that finishes: it adds nothing to the load before;
        a brief one adds nothing at all."""
        ahead = self.ahead
        return (len(self.processing) - len(self.long_running) - (len(ahead) if ahead else 0)
                - len(self.brief))

    @property
    def assigned(self) -> int:
        """Tasks sent to it, but for those waiting there ahead of their inputs and the brief
        ones: what its capacity is measured against (a line waiting ahead behind a running
        task must not keep queued work from its idle threads)."""
        ahead = self.ahead
        return len(self.processing) - (len(ahead) if ahead else 0) - len(self.brief)

    @property
    def unstarted_above_threads(self) -> bool:
        """It holds more tasks than threads, brief ones included: some wait unstarted there,
        for a steal to take (``balance.any_unstarted``)."""
        ahead = self.ahead
        return len(self.processing) - (len(ahead) if ahead else 0) > self.nthreads

    def __repr__(self) -> str:
        return f"<WorkerInfo {self.address} {self.status} processing={len(self.processing)}>"


@dataclass
class Dataset:
    """A dataset published by name: its keys, and the publisher's payload given back as it came."""
    keys: list[str]
    data: Payload | None
    pickled_with: str | None = None  # the Python that pickled ``data``, as its publisher said


class CenterView(Protocol):
    """What the pure helpers (``lineage``, ``placement``, ``balance``) may read of the center.

    ``CenterState`` is one; the helpers return decisions and never change what they read.
    """

    @property
    def tasks(self) -> Mapping[str, TaskState]: ...

    @property
    def workers(self) -> Mapping[str, WorkerInfo]: ...

    @property
    def names(self) -> Mapping[str, str]: ...  # worker name -> address

    @property
    def queue(self) -> ReadyQueue: ...  # keys of ready tasks waiting for a slot

    @property
    def stealing(self) -> Mapping[str, str | None]: ...  # key asked back -> who gets it

    @property
    def cancelling_unstarted(self) -> Mapping[str, set[str]]: ...  # asked back -> clients

    @property
    def avg_duration(self) -> float: ...

    @property
    def started(self) -> float: ...  # when this center started (seconds since the epoch)

    @property
    def worker_saturation(self) -> float: ...  # root tasks per thread a worker is sent

    @property
    def task_durations(self) -> TaskDurations: ...

    @property
    def clients(self) -> Mapping[str, set[str]]: ...  # client id -> keys it wants

    @property
    def unrunnable(self) -> set[str]: ...  # no-worker tasks

    @property
    def waiting_for_resources(self) -> Mapping[frozenset, dict[str, None]]: ...

    def capacity_of(self, worker: WorkerInfo) -> float: ...  # placement.capacity, as of now

    @property
    def task_counts(self) -> Mapping[str, dict[str, int]]: ...  # prefix -> state -> tasks


# One bytes object per pickled class, however many tasks' values are of it; bounded, since
# the bytes come from workers (past the bound each task keeps its own copy).
MAX_PICKLED_TYPES = 10_000
_pickled_types: dict[bytes, bytes] = {}


def same_pickled_type(pickled: bytes | None) -> bytes | None:
    if pickled is None:
        return None
    known = _pickled_types.get(pickled)
    if known is not None:
        return known
    if len(_pickled_types) < MAX_PICKLED_TYPES:
        _pickled_types[pickled] = pickled
    return pickled
