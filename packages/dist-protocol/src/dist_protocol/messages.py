"""One frozen dataclass per wire op, and the batch codec (frame 0 <-> messages). No I/O.

Each class says its ``op`` and who sends it; its annotations are its wire fields (the spec's
``schema/messages.json`` lists the same, and a test holds the two together). Fields whose
default is ``None`` are optional and left out of the wire map when unset.
"""
from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
from dataclasses import field
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:
    from typing_extensions import dataclass_transform

import msgpack

from .errors import InvalidMessage, UnknownOp
from .serialize import Payload
from . import codegen, columns
from .generated_messages import METHODS
from .records import frozen_record
from .wiretypes import BatchFrames, FieldSpec, field_specs, wire_field

OPS: dict[str, type[Message]] = {}


class _FieldSpecs:
    """A message class's ``fields``, made when first read: evaluating every field's type for
    every class was a third of what importing the catalogue cost, for the spec tools and tests
    alone (the codec reads ``field_specs`` when it generates its functions)."""

    def __get__(self, obj: Any, cls: type) -> list[FieldSpec]:
        specs = field_specs(cls)
        type.__setattr__(cls, "fields", specs)  # read from the class from now on
        return specs


class Message:
    """Base of every message class; subclasses are registered by ``op``."""

    op: ClassVar[str]
    direction: ClassVar[tuple[str, ...]]  # "sender->receiver" pairs
    since: ClassVar[int] = 1
    feature: ClassVar[str | None] = None  # the op may only be sent where this was agreed
    # (field name, default, feature) of the fields that belong to a feature
    gated_fields: ClassVar[tuple[tuple[str, Any, str], ...]] = ()
    # Whether the message may need a feature (its op's, a field's, a field of its records'):
    # only those are checked against a connection's agreed features.
    feature_checked: ClassVar[bool] = False
    # The features of the fields of its records (a submit's tasks'), for ``features_possible``.
    record_features: ClassVar[frozenset[str]] = frozenset()
    fields: ClassVar[_FieldSpecs] = _FieldSpecs()
    _decode: ClassVar[Any]
    _encode: ClassVar[Any]

    def to_wire(self, frames: list[Any], seen: dict[Any, Any] | None = None) -> dict[Any, Any]:
        """The msgpack map for this message; payload frames are appended to ``frames``."""
        out: dict[Any, Any] = type(self)._encode(self, frames, {} if seen is None else seen)
        return out

    @classmethod
    def from_wire(cls, value: dict[Any, Any], frames: list[Any]) -> Message:
        decoded: Message = cls._decode(value, frames)
        return decoded

    @classmethod
    def features_possible(cls) -> frozenset[str]:
        """Every feature a message of this type may need: where all are agreed, a connection
        need not ask each message's ``features_used``."""
        own = {cls.feature} if cls.feature else set()
        return frozenset(own | {feature for _, _, feature in cls.gated_fields}
                         | cls.record_features)

    def features_used(self) -> set[str]:
        """The features this message needs agreed on its connection (see ``features``)."""
        cls = type(self)
        used = {cls.feature} if cls.feature else set()
        for name, default, feature in cls.gated_fields:
            value = getattr(self, name)
            if value != (default() if callable(default) else default):
                used.add(feature)
        return used


M = TypeVar("M", bound=type)


@dataclass_transform(frozen_default=True, field_specifiers=(field, wire_field))
def record(cls: M) -> M:
    """A frozen slots dataclass, its methods generated ahead of time (``records``); those
    ``dataclass`` makes get ``codegen``'s ``__init__``."""
    return frozen_record(METHODS, fallback=codegen.install_initializer)(cls)


@dataclass_transform(frozen_default=True, field_specifiers=(field, wire_field))
def message(op: str, *direction: str, since: int = 1,
            feature: str | None = None) -> Callable[[M], M]:
    """Register a message class: a frozen dataclass whose annotations are its wire fields."""
    def register(cls: Any) -> Any:
        cls = record(cls)
        cls.op, cls.direction, cls.since, cls.feature = op, direction, since, feature
        cls.gated_fields = tuple(
            (f.name, f.default if f.default_factory is dataclasses.MISSING else f.default_factory,
             f.metadata["feature"]) for f in dataclasses.fields(cls)
            if f.metadata.get("feature") is not None and not f.name.startswith("_"))
        cls.feature_checked = cls.feature_checked or bool(feature or cls.gated_fields)
        # Generated on first use: most processes use a few of the ops, and importing the
        # catalogue stays cheap.
        cls._decode = _on_first_use(cls, "_decode", lambda: codegen.decoder(cls))
        cls._encode = _on_first_use(cls, "_encode", lambda: codegen.encoder(cls, op))
        OPS[op] = cls
        return cls
    return register


def _on_first_use(cls: type, name: str, make: Callable[[], Any]) -> Any:
    """A static method that replaces itself, the first time it is called, with ``make()``."""
    def first_use(*args: Any) -> Any:
        made = make()
        setattr(cls, name, staticmethod(made))
        return made(*args)
    return staticmethod(first_use)


@record
class TaskSpec:
    """A task as a client submits it.

    ``function`` is an import path (``"math:sqrt"``) or a payload; ``args`` is a payload of
    ``[args, kwargs]`` in which ``KeyRef``s stand for the values of ``deps``.
    """

    key: str
    function: str | Payload
    args: Payload | None = None
    deps: list[str] = field(default_factory=list)
    priority: int = 0
    workers: list[str] | None = None
    allow_other_workers: bool = False
    resources: dict[str, float] | None = wire_field(default=None, minimum=0)
    retries: int = wire_field(default=0, minimum=0)
    pickled_with: str | None = wire_field(  # pickle tag ("cpython-3.11") of pickled function/args
        default=None, shared=True)
    # An actor: the function is a class (or factory) whose result stays on the worker that
    # made it, its key's value being a handle (centers announcing "actors" take these).
    actor: bool | None = wire_field(default=None, feature="actors")  # keep it as an actor
    # An actor made again after its worker died, at most this many times (none: lost with
    # its first worker).
    max_restarts: int | None = wire_field(default=None, minimum=0, feature="actors")  # times remade
    # Runs on the worker ``workers`` names and on no other (a client's ``run``): should no
    # registered worker be that one (it left, died or never joined), it errs rather than wait.
    pinned: bool | None = wire_field(default=None, feature="pinned-tasks")


@record
class Environment:
    """What a process runs, as it states it in the handshake (advisory: for checks and
    reports; a peer that states none is an older or a non-Python one)."""

    implementation: str  # sys.implementation.name of Python peers: "cpython", "pypy"
    python: str  # the language version, e.g. "3.11.7"
    packages: dict[str, str] = field(default_factory=dict)  # distribution -> version




@record
class Transfer:
    """An input of a run, fetched from the peer ``source`` before it ran (seconds since the
    epoch, on the fetching worker's clock)."""

    source: str
    start: float
    stop: float


@record
class UploadedFile:
    """A file a client uploaded for every worker, present and future (see upload-file)."""

    name: str  # the file's name, without folders
    content: Payload  # its bytes (serializer "bytes")
    load: bool = True  # a .py module is imported once written


@record
class PluginSpec:
    """A worker plugin a client registered for every worker, present and future (see
    register-plugin)."""

    name: str  # unique among the center's plugins; registering the name again replaces it
    content: Payload  # the pickled plugin, unpickled only by workers


# -- handshake (any role) --------------------------------------------------------------------

@message("hello", "initiator->acceptor")
class Hello(Message):
    min_version: int
    max_version: int
    role: str = wire_field(values=("client", "worker", "peer"))
    name: str | None = None
    nonce: bytes | None = wire_field(default=None, length=32)  # random, fresh per connection
    features: list[str] | None = None  # the optional features this side implements
    environment: Environment | None = None  # what this side runs


@message("welcome", "acceptor->initiator")
class Welcome(Message):
    version: int
    auth: bool
    nonce: bytes | None = wire_field(default=None, length=32)  # with auth: random, fresh
    proof: bytes | None = wire_field(default=None, length=32)  # with auth: HMAC-SHA256
    features: list[str] | None = None  # the optional features this side implements
    environment: Environment | None = None  # what this side runs


@message("authenticate", "initiator->acceptor")
class Authenticate(Message):
    proof: bytes = wire_field(length=32)  # HMAC-SHA256


@message("authenticated", "acceptor->initiator")
class Authenticated(Message):
    pass


@message("error", "any->any")
class Error(Message):
    code: str
    message: str


# -- client -> center --------------------------------------------------------------------------

# (field name, default, feature) of the TaskSpec fields that belong to a feature; every such
# default is a plain value.
TASK_GATES = tuple((f.name, f.default, f.feature) for f in field_specs(TaskSpec)
                   if f.feature is not None)


@message("submit", "client->center")
class Submit(Message):
    tasks: list[TaskSpec]
    wanted: list[str] | None = None  # None: every task of this message is wanted
    small_values: bool = False  # from now on, small results come within key-in-memory
    # with small_values: the forms the client reads them in, in order (absent: pickle)
    small_values_serializers: list[str] | None = wire_field(default=None,
                                                            feature="small-values-msgpack")
    # A graph sent in parts, so that no one message holds all of it (feature "graph-parts"):
    # its parts name the same ``graph`` (the client's choice), each but the last with ``more``.
    # The center keeps a part's tasks, wanted or not, until the last part has been handled.
    graph: int | None = wire_field(default=None, feature="graph-parts")  # the graph's id
    more: bool = wire_field(default=False, feature="graph-parts")  # parts of it follow

    feature_checked: ClassVar[bool] = True  # its tasks may use fields of a feature
    # (a class attribute, not annotated: annotations are the record's declared fields)
    record_features = frozenset(feature for _, _, feature in TASK_GATES)

    def features_used(self) -> set[str]:
        used = Message.features_used(self)
        for task in self.tasks:
            for name, default, feature in TASK_GATES:
                if getattr(task, name) != default:
                    used.add(feature)
        return used


@message("release", "client->center")
class Release(Message):
    keys: list[str]


@message("cancel", "client->center")
class Cancel(Message):
    keys: list[str]
    # Only the keys whose tasks have not started (not running, not done): the others go on.
    pending_only: bool = wire_field(default=False, feature="cancel-pending-only")
    # Also the keys other clients hold, and every task that reads them: cancelled for every
    # holder (dask's ``cancel(force=True)``); without it only this client lets go of them.
    force: bool = wire_field(default=False, feature="cancel-force")


@message("who-has", "client->center")
class WhoHas(Message):
    id: int
    keys: list[str]


@message("who-has-reply", "center->client")
class WhoHasReply(Message):
    id: int
    who_has: dict[str, list[str]]


@message("scatter-plan", "client->center")
class ScatterPlan(Message):
    id: int
    keys: dict[str, int] = wire_field(minimum=0)  # key -> nbytes
    broadcast: bool = False
    workers: list[str] | None = None
    # With no worker to plan for: answered once there is one, or after this many seconds.
    timeout: float | None = wire_field(default=None, minimum=0, feature="waits")


@message("scatter-plan-reply", "center->client")
class ScatterPlanReply(Message):
    id: int
    targets: dict[str, list[str]]


@message("scatter-done", "client->center", feature="scatter-done")
class ScatterDone(Message):
    who_has: dict[str, list[str]]  # key -> the workers that confirmed storing it
    nbytes: dict[str, int] = wire_field(default_factory=dict, minimum=0)


@message("cluster-info", "client->center")
class ClusterInfo(Message):
    id: int
    # Answered once at least this many workers are registered (or after ``timeout`` seconds).
    min_workers: int | None = wire_field(default=None, minimum=0, feature="waits")
    timeout: float | None = wire_field(default=None, minimum=0, feature="waits")


@message("cluster-info-reply", "center->client")
class ClusterInfoReply(Message):
    id: int
    workers: list[dict[str, Any]]
    # when the center process started (seconds since the epoch)
    started: float | None = wire_field(default=None, feature="center-started")


# Feature ``worker-events``: the center keeps such a client's view of its workers current,
# so that the client never asks ``cluster-info`` to know who runs which Python.
@message("worker-list", "center->client", feature="worker-events")
class WorkerList(Message):
    # one map per registered worker: address, name, nthreads, memory_limit, resources,
    # environment (as in ``cluster-info-reply``'s workers)
    workers: list[dict[str, Any]]


@message("worker-added", "center->client", feature="worker-events")
class WorkerAdded(Message):
    worker: dict[str, Any]  # the map ``worker-list`` has for it


@message("worker-removed", "center->client", feature="worker-events")
class WorkerRemoved(Message):
    address: str


# Feature ``worker-status``: the center tells such a client when a worker cannot spill to its
# disk, so that the tasks waiting there do not wait in silence until the client's own timeout.
@message("worker-status", "center->client", feature="worker-status")
class WorkerStatus(Message):
    """The worker ``address`` cannot spill its values to disk (``cannot_spill``: why, as the
    worker said it), so that it pauses whenever its memory reaches the spill threshold; or,
    with ``cannot_spill`` empty, it spills again."""

    address: str
    cannot_spill: str = ""


@message("replicate", "client->center")
class Replicate(Message):
    keys: list[str]
    n: int = wire_field(default=2, minimum=1)  # copies wanted on distinct workers
    # With an id: answered by ``replicate-reply`` once the copies exist (or after ``timeout``).
    id: int | None = wire_field(default=None, feature="waits")
    timeout: float | None = wire_field(default=None, minimum=0, feature="waits")
    # the copies go only on these workers (addresses), and only copies there count
    workers: list[str] | None = wire_field(default=None, feature="replicate-workers")


REPLICATE_STATUSES = ("ok", "timeout", "gone")


@message("replicate-reply", "center->client", feature="waits")
class ReplicateReply(Message):
    """How a ``replicate`` with an id ended: ``ok`` (every key on ``n`` workers), ``timeout``
    (``keys``: those still short of ``n``) or ``gone`` (``keys``: those no longer in memory
    at the center -- released, lost, or being computed again)."""

    id: int
    status: str = wire_field(values=REPLICATE_STATUSES)
    n: int = wire_field(default=0, minimum=0)  # the copies waited for (at most the workers)
    keys: list[str] = wire_field(default_factory=list)


@message("restart", "client->center")
class Restart(Message):
    id: int
    timeout: float = wire_field(default=30.0, minimum=0)


@message("restart-reply", "center->client")
class RestartReply(Message):
    id: int
    workers: int  # workers registered again when the restart finished
    # The workers the center waited for (those registered when the restart began): fewer in
    # ``workers`` means the timeout passed first.
    expected: int | None = wire_field(default=None, minimum=0, feature="restart-expected")


@message("rebalance", "client->center", feature="rebalance")
class Rebalance(Message):
    """Move data between workers until each holds about as many bytes as the others;
    answered by ``rebalance-reply`` once the moves are done."""

    id: int
    keys: list[str] | None = None  # only these may move (None: any in memory)
    workers: list[str] | None = None  # only between these (names or addresses; None: all)


@message("rebalance-reply", "center->client", feature="rebalance")
class RebalanceReply(Message):
    id: int
    moved: list[str] = field(default_factory=list)  # keys now on another worker
    # Of the keys named, those that did not move: not in memory, or their move failed.
    failed: list[str] = field(default_factory=list)
    error: str | None = None  # why nothing was done (a worker named that the center lacks)


@message("upload-file", "client->center", feature="uploads")
class UploadFile(Message):
    """Keep ``file`` for the workers that register from now on (replacing a file of that
    name); answered by ``upload-file-reply``."""

    id: int
    file: UploadedFile


@message("upload-file-reply", "center->client", feature="uploads")
class UploadFileReply(Message):
    id: int
    error: str | None = None  # why the center did not keep the file (too large, too many)


@message("register-plugin", "client->center", feature="worker-plugins")
class RegisterPlugin(Message):
    """Keep ``plugin`` for the workers that register from now on (replacing a plugin of that
    name, unless ``idempotent``); answered by ``register-plugin-reply``."""

    id: int
    plugin: PluginSpec
    idempotent: bool = False  # keep the plugin of that name, if there is one


@message("register-plugin-reply", "center->client", feature="worker-plugins")
class RegisterPluginReply(Message):
    id: int
    error: str | None = None  # why the center did not keep the plugin (too large, too many)
    kept: bool = True  # false: ``idempotent`` and a plugin of that name was there already


@message("unregister-plugin", "client->center", feature="worker-plugins")
class UnregisterPlugin(Message):
    """Forget the plugin ``name``: workers registering from now on are not given it."""

    id: int
    name: str


@message("unregister-plugin-reply", "center->client", feature="worker-plugins")
class UnregisterPluginReply(Message):
    id: int
    error: str | None = None  # no plugin has that name


@message("story", "client->center", "center->worker", feature="story")
class Story(Message):
    """What happened to these keys: the center answers with its own log and, having asked
    every worker the same, theirs."""

    id: int
    keys: list[str]


@message("story-reply", "center->client", "worker->center", feature="story")
class StoryReply(Message):
    """Log entries, oldest first: ``key``, ``start``, ``finish`` (states), ``stimulus_id``
    (the event that caused the move), ``time`` (seconds since the epoch on the host that
    logged it) and ``worker`` (its address, or ``""`` for the center)."""

    id: int
    entries: list[dict[str, Any]]


WORKER_QUERIES = ("executing", "call-stack", "logs", "center-logs")


@message("worker-query", "client->center", "center->worker", feature="worker-query")
class WorkerQuery(Message):
    """What the workers are doing now, asked of each (or of those ``workers`` names) by the
    center for a client: ``executing``, the keys whose call runs now (of ``keys``, or all),
    a cancelled or released key's among them until its call returns (a call is not
    interrupted); ``call-stack``, the stack of each such call's thread; ``logs``, the
    worker's newest ``n`` log lines. ``center-logs`` asks the center for its own, and no
    worker."""

    id: int
    what: str = wire_field(values=WORKER_QUERIES)
    keys: list[str] | None = None
    workers: list[str] | None = None
    n: int | None = wire_field(default=None, minimum=0)


@message("worker-query-reply", "center->client", "worker->center", feature="worker-query")
class WorkerQueryReply(Message):
    """The answers by worker address (``""`` for the center's own): for ``executing`` a list
    of keys, for ``call-stack`` a map of key to the lines of its stack (outermost first),
    for ``logs`` and ``center-logs`` a list of ``[level, line]``, oldest first. A worker
    that left before it answered is missing."""

    id: int
    answers: dict[str, Any] = field(default_factory=dict)


@message("task-stream", "client->center", feature="task-stream")
class TaskStream(Message):
    """The task runs the center has recorded (a bounded number, the newest): those after the
    cursor ``after`` (from an earlier reply), that started at or after ``start`` and stopped
    at or before ``stop`` (seconds since the epoch), at most the newest ``count``."""

    id: int
    after: int | None = wire_field(default=None, minimum=0)
    start: float | None = None
    stop: float | None = None
    count: int | None = wire_field(default=None, minimum=0)


@message("task-stream-reply", "center->client", feature="task-stream")
class TaskStreamReply(Message):
    """Runs, oldest first, each a map: ``key``, ``worker`` (its address), ``status``
    (``"OK"``, or ``"error"`` for a run that raised), ``nbytes`` and ``startstops``
    (``{"action": "transfer", "start", "stop", "source"}`` for each input fetched from a peer
    for the run, then ``{"action": "compute", "start", "stop"}``).
    ``cursor`` counts the runs recorded ever: a later request passes it as ``after``."""

    id: int
    cursor: int = wire_field(minimum=0)
    records: list[dict[str, Any]] = field(default_factory=list)


@message("fire-and-forget", "client->center", feature="fire-and-forget")
class FireAndForget(Message):
    """Run these tasks to their end (and their inputs) although no client may want them: the
    center holds them until each is in memory, erred or lost, then forgets them."""

    keys: list[str]


@message("retry", "client->center", feature="retry")
class Retry(Message):
    """Run these erred tasks again, with the inputs that erred before them, their retries
    as their specs give them: the center sends each again what it sends of a key that
    settles (``key-in-memory``, ``task-erred``...). Keys not erred are ignored."""

    keys: list[str]


@message("task-spec", "client->center", feature="task-specs")
class GetTaskSpec(Message):
    """The spec of the task ``key``, which this client wants, so that the client can run it
    again in its own process (to debug it); with ``erred``, of the erred task behind ``key``
    where its error began (``key`` itself when its own run raised)."""

    id: int
    key: str
    erred: bool = False


@message("task-spec-reply", "center->client", feature="task-specs")
class TaskSpecReply(Message):
    """``task``: the spec asked for; absent, ``error`` says why (the client does not want the
    key, it is scattered data with no task, or it did not err)."""

    id: int
    task: TaskSpec | None = None
    error: str = ""


@message("want-keys", "client->center", feature="datasets")
class WantKeys(Message):
    """This client holds these keys from now on (keys it learnt of from a dataset): the center
    answers each as it would a submit of it (``key-in-memory``, ``task-erred``, ``key-lost``),
    and an unknown key with ``key-lost``."""

    keys: list[str]


@message("publish-dataset", "client->center", feature="datasets")
class PublishDataset(Message):
    """Keep ``data`` under ``name``; the dataset holds ``keys`` until it is unpublished.
    ``data`` is opaque to the center (a msgpack payload with key references, or a pickle)."""

    id: int
    name: str
    keys: list[str] = field(default_factory=list)
    data: Payload | None = None
    override: bool = False  # replace a dataset of that name instead of failing
    # pickle tag ("cpython-3.11") of the Python that pickled ``data``, kept with it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")


@message("get-dataset", "client->center", feature="datasets")
class GetDataset(Message):
    id: int
    name: str


@message("list-datasets", "client->center", feature="datasets")
class ListDatasets(Message):
    id: int


@message("unpublish-dataset", "client->center", feature="datasets")
class UnpublishDataset(Message):
    id: int
    name: str


@message("dataset-reply", "center->client", feature="datasets")
class DatasetReply(Message):
    """The answer to a dataset request: ``error`` says why it failed (empty: it did not);
    ``get-dataset`` gets ``keys`` and ``data``, ``list-datasets`` gets ``names``."""

    id: int
    error: str = ""
    keys: list[str] = field(default_factory=list)
    data: Payload | None = None
    names: list[str] | None = None
    # pickle tag of the Python that pickled ``data``, as its publisher stated it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")

@message("adaptive-target", "client->center", feature="retire-workers")
class AdaptiveTarget(Message):
    """How many workers the center would want so that the work it has (queued and running,
    times each kind of task's average duration) takes about ``target_duration`` seconds, and
    which workers it could let go."""

    id: int
    target_duration: float = wire_field(default=5.0, minimum=0)


@message("adaptive-target-reply", "center->client", feature="retire-workers")
class AdaptiveTargetReply(Message):
    id: int
    target: int = wire_field(minimum=0)  # workers wanted, at the current workers' size
    threads: int = wire_field(default=0, minimum=0)  # threads wanted (for sizing new workers)
    workers: int = wire_field(default=0, minimum=0)  # workers registered now
    retire: list[str] = field(default_factory=list)  # names safe to retire, first first


@message("retire-workers", "client->center", feature="retire-workers")
class RetireWorkers(Message):
    """Retire these workers (names or addresses) gracefully: no new tasks go to them, the
    tasks they have not started go elsewhere, the data only they hold is copied to other
    workers, and then (``close``) they are told to close."""

    id: int
    workers: list[str]
    close: bool = True


@message("retire-workers-reply", "center->client", feature="retire-workers")
class RetireWorkersReply(Message):
    id: int
    retired: dict[str, str] = field(default_factory=dict)  # address -> name
    failed: dict[str, str] = field(default_factory=dict)  # name or address -> why

@message("session", "client->center", feature="sessions")
class Session(Message):
    """Which session this connection is: a new one (``resume`` unset), or the one the client
    had on a connection it lost (``resume``: the id ``session-reply`` gave it then; ``keys``:
    the keys it holds, so the center can say which it does not know)."""

    id: int
    resume: str | None = None
    keys: list[str] | None = None


@message("session-reply", "center->client", feature="sessions")
class SessionReply(Message):
    """``client``: the id of this connection's session, to give as ``resume`` after losing
    it. ``durable``: the center keeps its state across a restart of its own, so a session
    may be resumed then. ``resumed``: this connection took the earlier session over -- the
    keys it wanted are wanted still, and the center sends what it knows of them now -- and
    ``unknown`` lists the keys given in ``session`` that the center does not know for it."""

    id: int
    client: str
    durable: bool = False
    resumed: bool = False
    unknown: list[str] = wire_field(default_factory=list)


# -- center -> client ------------------------------------------------------------------------

@message("key-in-memory", "center->client")
class KeyInMemory(Message):
    key: str
    nbytes: int = wire_field(default=0, minimum=0)
    type: str = ""
    workers: list[str] | None = None  # who holds it now, so a gather can skip asking who-has
    value: Payload | None = None  # a small value itself, for clients that asked (see submit)
    # the value's class pickled, as the worker sent it (the center never unpickles it)
    type_pickled: bytes | None = wire_field(default=None, feature="result-types")


@message("key-lost", "center->client")
class KeyLost(Message):
    key: str
    message: str


@message("key-recomputing", "center->client", feature="key-recomputing")
class KeyRecomputing(Message):
    key: str


@message("key-cancelled", "center->client")
class KeyCancelled(Message):
    key: str


# -- worker -> center, center -> client ------------------------------------------------------

@message("task-erred", "worker->center", "center->client")
class TaskErred(Message):
    key: str
    exception_type: str
    message: str
    traceback: str = ""
    # the exception pickled, for Python clients
    exception: Payload | None = wire_field(default=None, feature="pickled-exceptions")
    # the pickle tag ("cpython-3.11") of the worker that pickled ``exception``: a client on
    # another Python minor version must not build the code a pickled exception may hold
    pickled_with: str | None = wire_field(default=None, feature="pickled-exception-python")
    # when the failed run started and stopped (seconds since the epoch), for the center's task
    # stream; absent when the task never ran (its function or inputs could not be loaded)
    start: float | None = wire_field(default=None, feature="task-stream")
    stop: float | None = wire_field(default=None, feature="task-stream")
    transfers: list[Transfer] = wire_field(default_factory=list, feature="task-stream")


# -- worker -> center --------------------------------------------------------------------------

@message("register-worker", "worker->center")
class RegisterWorker(Message):
    address: str
    nthreads: int
    name: str | None = None
    memory_limit: int = wire_field(default=0, minimum=0)
    keys: dict[str, int] = wire_field(default_factory=dict, minimum=0)  # held keys -> nbytes
    resources: dict[str, float] = wire_field(default_factory=dict, minimum=0)  # {"GPU": 2}


@message("worker-registered", "center->worker")
class WorkerRegistered(Message):
    address: str
    heartbeat_interval: float = 1.0
    # The files clients uploaded, kept by the center: the worker installs them before it
    # takes any task (see ``upload-file``).
    uploads: list[UploadedFile] = wire_field(default_factory=list, feature="uploads")
    # The worker plugins clients registered, kept by the center: the worker sets them up,
    # after the uploads, before it takes any task (see ``register-plugin``).
    plugins: list[PluginSpec] = wire_field(default_factory=list, feature="worker-plugins")


@message("task-finished", "worker->center")
class TaskFinished(Message):
    key: str
    nbytes: int = wire_field(minimum=0)
    type: str = ""
    start: float = 0.0
    stop: float = 0.0
    value: Payload | None = None  # the value itself when small (pickled, at most 1 KiB)
    # the small value as msgpack too, when msgpack can carry it in at most 1 KiB
    value_msgpack: Payload | None = wire_field(default=None, feature="small-values-msgpack")
    # the run's inputs fetched from peers for it, for the center's task stream
    transfers: list[Transfer] = wire_field(default_factory=list, feature="task-stream")
    # the value's class pickled (by reference; by value, small, when no module defines it)
    type_pickled: bytes | None = wire_field(default=None, feature="result-types")


@message("keys-added", "worker->center")
class KeysAdded(Message):
    keys: dict[str, int] = wire_field(minimum=0)


@message("missing-data", "worker->center")
class MissingData(Message):
    key: str
    worker: str


@message("heartbeat", "worker->center")
class Heartbeat(Message):
    metrics: dict[str, Any] = field(default_factory=dict)


@message("task-seceded", "worker->center", feature="secede")
class TaskSeceded(Message):
    """The task ``key`` runs on, but gave its thread back while it waits (on tasks it
    submitted): it no longer counts against the worker's threads."""

    key: str


# Feature ``memory-restart``: a worker whose memory passed *terminate* names, before it exits
# for its nanny to start it again, the values it blames, so that the center counts the restart
# against their tasks as it counts a death against the tasks running there.
@message("restarting-for-memory", "worker->center", feature="memory-restart")
class RestartingForMemory(Message):
    # key -> bytes: the largest values held in memory or being read back by a running task
    # that together make up the process's excess over *terminate*
    keys: dict[str, int] = wire_field(minimum=0)
    memory: int = wire_field(minimum=0)  # the process's resident bytes as it restarts


# Feature ``task-terminated``: a worker stopped by a SIGTERM that its nanny did not send (a
# task's ``os.kill(os.getpid(), SIGTERM)``) names, before it exits, the tasks that may have
# sent it, so that the center counts the death against a task that had just finished too.
@message("worker-terminated", "worker->center", feature="task-terminated")
class WorkerTerminated(Message):
    # the tasks running when the signal came, and the last to end if it ended within a
    # heartbeat interval before
    keys: list[str]


@message("unregister", "worker->center")
class Unregister(Message):
    pass


# -- center -> worker --------------------------------------------------------------------------

@message("compute-task", "center->worker")
class ComputeTask(Message):
    key: str
    function: str | Payload
    args: Payload | None = None
    who_has: dict[str, list[str]] = field(default_factory=dict)
    nbytes: dict[str, int] = wire_field(default_factory=dict, minimum=0)
    priority: int = 0
    pickled_with: str | None = wire_field(  # pickle tag ("cpython-3.11") of pickled function/args
        default=None, shared=True)
    actor: bool | None = wire_field(default=None, feature="actors")  # keep it as an actor
    # Inputs this worker is computing now (dispatched ahead): wait for them here, fetch nothing
    ahead: list[str] | None = wire_field(default=None, feature="dispatch-ahead")
    # A client that reads msgpack wants the result: a small value goes as msgpack too
    # (``task-finished.value_msgpack``); otherwise the worker does not make that copy.
    value_msgpack: bool = wire_field(default=False, feature="small-values-msgpack")


@message("acquire-replicas", "center->worker")
class AcquireReplicas(Message):
    who_has: dict[str, list[str]]
    nbytes: dict[str, int] = wire_field(default_factory=dict, minimum=0)


@message("restart-worker", "center->worker")
class RestartWorker(Message):
    reason: str = "restart requested"


@message("close-worker", "center->worker", feature="retire-workers")
class CloseWorker(Message):
    """Close for good (a nanny stops too): retirement has moved everything this worker held."""

    reason: str = "retired"


@message("free-keys", "center->worker")
class FreeKeys(Message):
    keys: list[str]


@message("steal-request", "center->worker")
class StealRequest(Message):
    keys: list[str]


@message("steal-reply", "worker->center")
class StealReply(Message):
    keys: list[str]  # those given up: they had not started, and this worker forgot them
    kept: list[str] = field(default_factory=list)  # started, finished or unknown here


# -- data plane: client/worker -> worker -------------------------------------------------------

@message("get-data", "client->worker", "worker->worker")
class GetData(Message):
    id: int
    keys: list[str]
    serializers: list[str] | None = None  # what the asker can read, in order of preference


@message("data", "worker->client", "worker->worker")
class Data(Message):
    id: int
    data: dict[str, Payload]
    missing: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@message("put-data", "client->worker")
class PutData(Message):
    id: int
    data: dict[str, Payload]


@message("data-stored", "worker->client")
class DataStored(Message):
    id: int
    keys: list[str]


# -- coordination primitives: client -> center -> client ---------------------------------------

PRIMITIVE_KINDS = ("queue", "variable", "lock", "semaphore", "event", "topic", "log")


@message("coordinate", "client->center", feature="coordination")
class Coordinate(Message):
    """An action on a named primitive held by the center (see the spec's table of actions).
    Waiting actions are answered when they can be done, or with status ``timeout``."""

    id: int
    kind: str = wire_field(values=PRIMITIVE_KINDS)
    name: str
    action: str
    value: Payload | None = None  # what is put, set or published
    keys: list[str] = field(default_factory=list)  # keys the value refers to: held meanwhile
    timeout: float | None = wire_field(default=None, minimum=0)  # None: wait until done
    limit: int | None = wire_field(default=None, minimum=0)  # queue maxsize, semaphore leases
    lease: str | None = None  # lock/semaphore: the holder's name for its lease
    # pickle tag ("cpython-3.11") of the Python that pickled ``value``, kept with it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")


@message("coordinate-reply", "center->client", feature="coordination")
class CoordinateReply(Message):
    id: int
    status: str = wire_field(values=("ok", "timeout", "error"))
    value: Payload | None = None  # what was got
    keys: list[str] = field(default_factory=list)  # keys it refers to: now wanted by the asker
    count: int | None = None  # queue size, leases held, 1/0 for an event set or not
    error: str = ""  # with status error: what was wrong
    # pickle tag of the Python that pickled ``value``, as whoever put it stated it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")
    # an event log's entries, oldest first (``read``), or its topics' names (``topics``)
    values: list[Payload] = wire_field(default_factory=list, feature="event-log")


@message("published", "center->client", feature="coordination")
class Published(Message):
    """A message on a topic the client subscribed to: a ``topic``'s or a ``log``'s."""

    topic: str
    value: Payload
    # pickle tag of the Python that pickled ``value``, as its publisher stated it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")
    kind: str | None = wire_field(default=None, values=("log",), feature="event-log")  # None: topic


# -- actors: caller -> hosting worker --------------------------------------------------------

@message("actor-call", "client->worker", feature="actors")
class ActorCall(Message):
    """Call a method of the actor ``key`` (``args``: ``[args, kwargs]``), or read its
    attribute ``name`` when ``args`` is absent. Calls on one connection run in order."""

    id: int
    key: str
    name: str
    args: Payload | None = None
    # what the caller can read, in order of preference (absent: pickle)
    serializers: list[str] | None = wire_field(default=None, feature="actor-serializers")


@message("actor-result", "worker->client", feature="actors")
class ActorResult(Message):
    id: int
    status: str = wire_field(values=("ok", "error", "lost"))
    value: Payload | None = None
    exception_type: str = ""
    message: str = ""
    traceback: str = ""
    # the exception pickled, for Python callers
    exception: Payload | None = wire_field(default=None, feature="pickled-exceptions")


def downgrade(msg: Message, features: frozenset[str] | set[str]) -> Message:
    """``msg`` without the optional fields of features not in ``features`` (back to their
    defaults), for a sender that can do without them -- a task-erred without its pickled
    exception for a client that cannot read one. An op of such a feature cannot be
    downgraded: ``send`` refuses it."""
    cls = type(msg)
    try:
        dropped = _DROPPED[cls, features]  # type: ignore[index]
    except (KeyError, TypeError):  # (TypeError: a mutable set, which is not remembered)
        dropped = tuple((name, default) for name, default, feature in cls.gated_fields
                        if feature not in features)
        if type(features) is frozenset:
            _DROPPED[cls, features] = dropped
    if not dropped:
        return msg
    changes = {name: (default() if callable(default) else default) for name, default in dropped}
    return dataclasses.replace(msg, **changes)  # type: ignore[type-var]


# (message class, a connection's agreed features) -> the gated fields it drops: sent with every
# message of a type with gated fields (a center's key-in-memory, a worker's task-finished), and
# nearly always nothing. A few entries: one per type and kind of peer.
_DROPPED: dict[tuple[type, frozenset[str]], tuple[tuple[str, Any], ...]] = {}


# -- batches -----------------------------------------------------------------------------------

# Bound at import, as the codecs in serialize.py are: a task that replaces msgpack's functions
# in its worker's process must not change how the worker's messages are framed.
_Packer, _unpackb = msgpack.Packer, msgpack.unpackb
_new_list = list.__new__


class _Packers(threading.local):
    """A msgpack packer per thread: making one (and its buffer) for every batch cost more
    than packing a batch of one small message."""

    def __init__(self) -> None:
        self.pack = _Packer(use_bin_type=True).pack


_PACKERS = _Packers()


def encode_batch(messages: list[Message]) -> list[Any]:
    """Frames for one batch: frame 0 is the msgpack list, payload frames follow."""
    frames: list[Any] = [b""]
    seen: dict[Any, Any] = {}
    wire = [type(m)._encode(m, frames, seen) for m in messages]
    frames[0] = _PACKERS.pack(wire)
    return frames


_COLUMNAR, _MIN_RUN = columns.COLUMNAR, columns.MIN_RUN
_NO_MARKS: dict[Any, Any] = {}
_COLUMNAR_MARKS = {_COLUMNAR: True}
_FRAME_COLUMN_MARKS = {_COLUMNAR: True, columns.FRAME_COLUMNS: True}


def encode_batches(messages: list[Message], max_frames: int, columnar: bool = False,
                   frame_columns: bool = False) -> list[list[Any]]:
    """Like ``encode_batch``, but starts a new batch whenever one reaches ``max_frames``
    frames, so a burst of messages never exceeds the receiver's frame-count limit.
    ``columnar`` (the peer agreed ``columns``): runs of messages of one op go as column
    blocks; ``frame_columns`` (and ``frame-columns``): their columns of one-frame payloads
    as frame columns."""
    # ``marks``: what a batch's ``seen`` starts with, the forms the peer agreed to read.
    if columnar:
        marks = _FRAME_COLUMN_MARKS if frame_columns else _COLUMNAR_MARKS
        if len(messages) >= _MIN_RUN:
            # Only two messages of one op in a row make a block: a lone message's mixed
            # batch (a submit with a release, a compute-task with a free-keys) is written
            # message by message, byte for byte as the column path would, without its
            # grouping. (A loop written out here: a call costs such a batch more.)
            previous = None
            for message in messages:
                kind = type(message)
                if kind is previous:
                    return _encode_columnar(messages, max_frames, marks)
                previous = kind
    else:
        marks = _NO_MARKS
    # (a batch of one message has no run; its lists of records may still be column lists)
    batches = []
    frames: list[Any] = [b""]
    seen: dict[Any, Any] = dict(marks)
    wire: list[Any] = []
    for m in messages:
        wire.append(type(m)._encode(m, frames, seen))
        if len(frames) >= max_frames:
            frames[0] = _PACKERS.pack(wire)
            batches.append(frames)
            frames, seen, wire = [b""], dict(marks), []
    if wire:
        frames[0] = _PACKERS.pack(wire)
        batches.append(frames)
    return batches


def _encode_columnar(messages: list[Message], max_frames: int,
                     marks: dict[Any, Any]) -> list[list[Any]]:
    batches = []
    frames: list[Any] = [b""]
    seen: dict[Any, Any] = dict(marks)
    wire: list[Any] = []
    for cls, group in itertools.groupby(messages, type):
        run = list(group)
        start = 0
        with_payloads = columns.carries_payloads(cls)
        while start < len(run):
            end = min(len(run), start + columns.MAX_COUNT)
            if with_payloads:
                # A block's payload frames are all added at once: it ends with the message
                # that may bring the batch to ``max_frames``, where the batch was cut when
                # written message by message.
                end = columns.block_end(run, start, end, max_frames - len(frames))
            part = run[start:end]
            start = end
            item = columns.encode_block(part, frames, seen) if len(part) >= columns.MIN_RUN \
                else None
            if item is not None:
                wire.append(item)
            else:
                wire.extend(type(m)._encode(m, frames, seen) for m in part)
            if len(frames) >= max_frames:
                frames[0] = _PACKERS.pack(wire)
                batches.append(frames)
                frames, seen, wire = [b""], dict(marks), []
    if wire:
        frames[0] = _PACKERS.pack(wire)
        batches.append(frames)
    return batches


def decode_batch(frames: list[Any], columnar: bool = False,
                 frame_columns: bool = False) -> list[Message]:
    """Messages of one batch. Raises ``InvalidMessage``/``UnknownOp`` on anything malformed.
    ``columnar`` (the connection agreed ``columns``): column blocks are read too;
    ``frame_columns`` (and ``frame-columns``): frame columns in them."""
    try:
        wire = _unpackb(frames[0], raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # noqa: BLE001 -- msgpack raises several types for bad input
        raise InvalidMessage(f"frame 0 is not valid msgpack: {type(exc).__name__}") from None
    if type(wire) is not list:
        raise InvalidMessage("frame 0 must be a msgpack list of message maps")
    # (made without ``BatchFrames.__init__``: a Python ``__init__`` and its ``super()`` cost
    # more than the rest of a lone small message's decoding in its batch)
    batch = _new_list(BatchFrames)
    batch += frames
    batch.payloads, batch.columnar, batch.frame_columns = {}, columnar, (
        columnar and frame_columns)
    frames = batch
    out = []
    for item in wire:
        if type(item) is not dict:
            if columnar and type(item) is list:
                out.extend(columns.decode_block(item, frames, OPS))
                continue
            raise InvalidMessage("each message must be a map" + (
                " or a column block" if columnar else ""))
        op = item.get("op")
        cls = OPS.get(op) if type(op) is str else None
        if cls is None:
            raise UnknownOp(f"unknown op {op!r}" if type(op) is str else "message without an op")
        out.append(cls._decode(item, frames))
    return out


def describe_ops() -> dict[str, dict[Any, Any]]:
    """The catalogue as data, in the shape of spec/schema/messages.json."""
    return {
        op: {
            "direction": list(cls.direction),
            "since": cls.since,
            **({"feature": cls.feature} if cls.feature else {}),
            "fields": {f.name: f.describe() for f in cls.fields},
        }
        for op, cls in OPS.items()
    }


RECORDS: dict[str, type] = {"TaskSpec": TaskSpec, "Environment": Environment,
                            "UploadedFile": UploadedFile, "PluginSpec": PluginSpec,
                            "Transfer": Transfer}


def describe_records() -> dict[str, dict[Any, Any]]:
    return {name: {f.name: f.describe() for f in field_specs(cls)}
            for name, cls in RECORDS.items()}


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type)
           and (issubclass(obj, Message) or obj in (TaskSpec, Environment, UploadedFile,
                                                             PluginSpec))]
__all__ += ["OPS", "PRIMITIVE_KINDS", "RECORDS", "downgrade", "encode_batch", "decode_batch",
            "describe_ops", "describe_records"]
_ = dataclasses
