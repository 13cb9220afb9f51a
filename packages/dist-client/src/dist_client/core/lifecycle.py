"""A client's core starting and closing: connecting (after starting a local cluster, when
asked), abandoning a failed start, and closing the connection, the I/O thread and the local
cluster, the futures not done then cancelled. These functions act on the client's core
(``core.client.ClientCore``) through the small interface ``Core``.
"""
from __future__ import annotations

from typing import Any, Protocol

from dist_protocol.comm import Comm
from dist_protocol.replies import PendingReplies
from dist_protocol.timeouts import wait_for

from .. import dask_defaults, reconnect, shutdown, task_output, transfer
from ..environments import ClusterEnvironments
from ..event_log import EventHandlers
from .loop import LoopThread


class Core(Protocol):
    """What starting and closing need of the client's core (``core.client.ClientCore``)."""

    center: Comm | None
    timeout: float
    cluster: Any
    accepting: bool
    counted_open: bool
    session: reconnect.SessionInfo
    replies: PendingReplies
    envs: ClusterEnvironments
    io: LoopThread
    event_handlers: EventHandlers
    worker_connections: transfer.WorkerConnections

    @property
    def status(self) -> str: ...
    @status.setter
    def status(self, status: str) -> None: ...
    @property
    def connected(self) -> Any: ...  # (a threading.Event)
    def facade(self) -> Any: ...
    def start_local_cluster(self, options: dict[str, Any]) -> None: ...
    async def connect(self) -> Comm: ...
    async def refresh_workers(self, min_workers: int | None = None,
                              timeout: float | None = None) -> list[dict]: ...
    def in_forked_child(self) -> bool: ...
    def cancel_everything(self, why: str, finished_too: bool = False) -> None: ...


async def start(core: Core, local: dict[str, Any] | None,
                set_as_default: bool) -> None:
    """Connect (first starting a local cluster here, on the I/O thread, when ``local``
    gives its shape); the workers' Pythons and packages, where they differ, are warned of."""
    if local is not None:
        core.start_local_cluster(local)
    core.center = await core.connect()
    await core.session.open(core.center, core.replies, core.timeout)
    core.envs.center = core.center.peer_environment
    await core.refresh_workers()
    await task_output.subscribe(core)
    core.status = "running"
    core.connected.set()
    shutdown.track(core)
    dask_defaults.executor_opened(default_scheduler=set_as_default and not getattr(
        core.facade(), "asynchronous", True))
    core.counted_open = True


def abandon(core: Core) -> None:
    """After a failed start: nothing stays open."""
    if core.center is not None:
        core.io.run(_disconnect(core), timeout=5)
    core.io.stop()
    if core.cluster is not None:
        core.cluster.close()
    core.status = "closed"


def close(core: Core, timeout: float | None) -> None:
    """Close the connection (and the local cluster); futures not done become cancelled.
    Telling the center takes at most ``timeout`` seconds (5 by default); closing goes on
    after that whatever the center says."""
    if core.in_forked_child():
        # The parent's connection and cluster are left alone: this copy only stops.
        core.status = "closed"
        core.accepting = False
        return
    if not _begin_closing(core):
        return
    try:
        core.io.run(_disconnect(core), timeout=5 if timeout is None else timeout)
    except Exception:  # noqa: BLE001 -- closing goes on whatever the cluster says
        pass
    _end_closing(core)


async def close_async(core: Core, timeout: float | None) -> None:
    """``close``, awaited on the caller's event loop."""
    if not _begin_closing(core):
        return
    try:
        await wait_for(core.io.run_async(_disconnect(core)), 5 if timeout is None else timeout)
    except Exception:  # noqa: BLE001 -- closing goes on whatever the cluster says
        pass
    _end_closing(core)


def _begin_closing(core: Core) -> bool:
    if core.status in ("closing", "closed"):
        return False
    core.status = "closing"
    core.accepting = False
    return True


def _end_closing(core: Core) -> None:
    core.event_handlers.close()
    core.io.stop()
    if core.cluster is not None:
        core.cluster.close()
    if core.counted_open:
        core.counted_open = False
        dask_defaults.executor_closed()
    core.status = "closed"
    core.cancel_everything("the executor closed")


async def _disconnect(core: Core) -> None:
    core.worker_connections.close()
    if core.center is not None and not core.center.is_closed:
        core.center.close("client closing")
