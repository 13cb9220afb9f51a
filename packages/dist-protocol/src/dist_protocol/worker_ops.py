"""The ops of a worker with its center, and of the data plane (a client or a peer with a
worker), both ways. No I/O.
"""
from __future__ import annotations

from dataclasses import field
from typing import Any

from .message_base import Message, message
from .serialize import Payload
from .wiretypes import wire_field
from .wire_records import PluginSpec, Transfer, UploadedFile


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
    # the task raised ``Reschedule`` (worker -> center only): not an error, it is to be
    # placed again and run anew; a center without the feature takes it as the error it is
    reschedule: bool = wire_field(default=False, feature="reschedule")


# -- worker -> center --------------------------------------------------------------------------

@message("register-worker", "worker->center")
class RegisterWorker(Message):
    address: str
    nthreads: int
    name: str | None = None
    memory_limit: int = wire_field(default=0, minimum=0)
    keys: dict[str, int] = wire_field(default_factory=dict, minimum=0)  # held keys -> nbytes
    resources: dict[str, float] = wire_field(default_factory=dict, minimum=0)  # {"GPU": 2}
    # the nanny this worker runs under ("host:pid"), which starts it again when it exits
    # to restart; the same across its restarts; None: no nanny, it cannot be restarted
    nanny: str | None = wire_field(default=None, feature="restart-workers")


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


# Feature ``nanny-vouch``: a worker's nanny, a process of its own, says the worker process lives
# and runs (it is neither stopped nor idle) while the worker itself may be silent: a task that
# holds the interpreter lock in C code stops every thread of its process, heartbeats too. It
# speaks on a connection of its own, whose first message is this one.
@message("worker-alive", "worker->center", feature="nanny-vouch")
class WorkerAlive(Message):
    address: str  # the worker vouched for, as it registered


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
