"""What the center records about each task and each worker (``CenterState`` owns them)."""
from __future__ import annotations

from dist_protocol.messages import TaskErred, TaskSpec

# Most tasks never get a dependent, a second holder or a second client. Until they do, they
# share this empty set rather than hold four of their own (about 900 bytes a task); ``added``
# gives a task its own set on the first addition.
NONE: frozenset = frozenset()


def added(current: set[str] | frozenset, item: str) -> set[str]:
    """``current`` with ``item`` in it: the shared empty set is replaced, never changed."""
    if current is NONE:
        return {item}
    current.add(item)  # type: ignore[union-attr]
    return current  # type: ignore[return-value]


def discard(current: set[str] | frozenset, item: str) -> None:
    if current:
        current.discard(item)  # type: ignore[union-attr]


ACTIVE = frozenset({"waiting", "queued", "no-worker", "processing"})
STATES = ACTIVE | {"memory", "erred", "released", "lost", "scattering"}


def key_prefix(key: str) -> str:
    """The function name a key starts with: ``inc`` for ``inc-<hash>``; for a dask tuple key
    (``"('sum-aggregate-<token>', 0)"``) the name in its first element, as dask shows it."""
    name = key[2:].split(key[1], 1)[0] if key.startswith(("('", '("')) else key
    return (name.rsplit("-", 1)[0] if "-" in name else name) or key


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
        self.known: set[str] = set()

    def __call__(self, key: str) -> str:
        prefix = key_prefix(key)
        if prefix in self.known:
            return prefix
        if len(self.known) < self.limit:
            self.known.add(prefix)
            return prefix
        return OTHER_PREFIX


class TaskState:
    __slots__ = ("key", "spec", "deps", "dependents", "state", "waiting_on", "who_has",
                 "nbytes", "type", "processing_on", "wanted_by", "died_on", "retries_left",
                 "error", "priority", "scattered", "lost_message", "prefix", "counts")

    def __init__(self, key: str, spec: TaskSpec | None, seq: int, prefix: str | None = None):
        self.key = key
        self.prefix = key_prefix(key) if prefix is None else prefix  # what it is counted under
        self.counts: dict[str, int] | None = None  # its prefix's tasks by state, once it moved
        self.spec = spec
        self.deps: tuple[str, ...] = tuple(spec.deps) if spec else ()
        self.dependents: set[str] | frozenset = NONE
        self.state = "released"
        self.waiting_on: set[str] | frozenset = NONE
        self.who_has: set[str] | frozenset = NONE
        self.nbytes = 0
        self.type = ""
        self.processing_on: str | None = None
        self.wanted_by: set[str] | frozenset = NONE
        self.died_on: list[str] = []  # workers that died while running it
        self.retries_left = spec.retries if spec else 0
        self.error: TaskErred | None = None
        self.priority = (-(spec.priority if spec else 0), seq)
        self.scattered = spec is None
        self.lost_message = ""

    def __repr__(self) -> str:
        return f"<TaskState {self.key} {self.state}>"


class WorkerInfo:
    __slots__ = ("address", "name", "nthreads", "memory_limit", "processing", "has_what",
                 "nbytes", "status", "metrics", "resources", "environment")

    def __init__(self, address: str, name: str, nthreads: int, memory_limit: int,
                 resources: dict[str, float] | None = None):
        self.address = address
        self.resources: dict[str, float] = dict(resources or {})  # what it has in all
        self.name = name
        self.nthreads = max(1, nthreads)
        self.memory_limit = memory_limit
        self.processing: dict[str, None] = {}  # in the order they were sent
        self.has_what: set[str] = set()
        self.nbytes = 0
        self.status = "running"
        self.metrics: dict = {}
        self.environment: dict | None = None  # Python and package versions, as it stated them

    def __repr__(self) -> str:
        return f"<WorkerInfo {self.address} {self.status} processing={len(self.processing)}>"
