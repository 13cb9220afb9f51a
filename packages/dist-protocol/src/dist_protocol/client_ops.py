"""The ops of the handshake (any role) and of a client with its center, both ways. No I/O.
"""
from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from .message_base import Message, message
from .serialize import Payload
from .wiretypes import field_specs, wire_field
from .wire_records import Environment, PluginSpec, TaskSpec, UploadedFile


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


RESTART_WORKER_STATUSES = ("OK", "timed out")


@message("restart-workers", "client->center", feature="restart-workers")
class RestartWorkers(Message):
    """Restart these workers (addresses or names) through their nannies, and answer once each
    is registered again, or when ``timeout`` passes."""

    id: int
    workers: list[str]
    timeout: float = wire_field(default=30.0, minimum=0)


@message("restart-workers-reply", "center->client", feature="restart-workers")
class RestartWorkersReply(Message):
    """``status``: for each worker as the request named it, ``OK`` (registered again) or
    ``timed out``; empty with ``error`` when nothing was restarted (a worker unknown, or one
    without a nanny)."""

    id: int
    status: dict[str, str] = field(default_factory=dict)  # values: RESTART_WORKER_STATUSES
    error: str = ""


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
