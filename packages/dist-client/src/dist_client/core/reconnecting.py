"""How a client lives through losing its center: the connection closes, pending work fails
or waits, and the session resumes on a new connection (``reconnect`` opens it).

A durable center knows the client's keys when it is back, so pending futures wait for it;
any other center starts empty, and what it does not know fails with ``CenterLostError``
saying to submit the work again. These functions act on the client's core
(``core.client.ClientCore``) through the small interface ``Core``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Protocol

from dist_protocol.comm import Comm
from dist_protocol.errors import CommClosedError
from dist_protocol.replies import PendingReplies

from .. import event_log, reconnect
from ..data_paths import DataPaths
from ..environments import ClusterEnvironments
from ..errors import CenterLostError, ClusterError
from .loop import LoopThread
from .state import ClientState, Order

log = logging.getLogger("dist_client")


class Core(Protocol):
    """What reconnecting needs of its client's core (``core.client.ClientCore``)."""

    center: Comm | None
    address: str
    timeout: float
    reconnect_timeout: float
    lock: threading.RLock
    cancels_heard: threading.Condition
    state: ClientState
    io: LoopThread
    envs: ClusterEnvironments
    session: reconnect.SessionInfo
    replies: PendingReplies
    connected: threading.Event
    data: DataPaths

    @property
    def status(self) -> str: ...
    @status.setter
    def status(self, status: str) -> None: ...
    async def connect(self) -> Comm: ...
    def carry_out(self, orders: Iterable[Order]) -> None: ...
    def flush_outbox(self) -> None: ...


def center_lost(core: Core, comm: Comm) -> None:
    """The connection to the center closed: reconnect (``resume``), or fail what cannot
    come any more."""
    if comm is not core.center:
        return  # already handled (a connection is lost once)
    core.envs.connection_lost()
    with core.lock:
        core.cancels_heard.notify_all()  # no word on cancels comes on a lost connection
    if core.status == "reconnecting":  # lost again while resuming the session
        core.replies.fail(CommClosedError("lost the center again while reconnecting"))
        return
    if core.status != "running":
        return  # closing
    why = f"lost the connection to the center at {core.address}" \
        + (f": {comm.close_reason}" if comm.close_reason else "")
    reconnecting = core.reconnect_timeout > 0
    core.status = "reconnecting" if reconnecting else "center-lost"
    core.connected.clear()
    # A durable center knows this client's keys when it is back: pending futures wait for
    # it. Otherwise work in flight is gone with the center's state: its futures fail now,
    # rather than after the reconnection, so nobody waits for results that cannot come.
    error = CenterLostError(why + ("; the executor is reconnecting: submit the work again"
                                   if reconnecting else ""))
    if not (reconnecting and core.session.durable):
        center_forgot(core, error)
    core.replies.fail(error)
    if reconnecting:
        core.io.loop.create_task(resume(core, why))


def center_forgot(core: Core, error: BaseException) -> list[str]:
    """Fail the pending futures with ``error``; the keys done, to check with the center."""
    with core.lock:
        fails, done = core.state.center_lost(error)
    core.carry_out(fails)
    return done


async def resume(core: Core, why: str) -> None:
    """Connect again, for at most ``reconnect_timeout`` seconds, and resume the session:
    the keys the center forgot fail, as they would have without the reconnection."""
    give_up = time.monotonic() + core.reconnect_timeout
    while True:
        try:
            comm = await reconnect.until_connected(
                core.connect, max(0.0, give_up - time.monotonic()), core.address)
        except Exception as exc:  # noqa: BLE001 -- given up: as if it never reconnected
            if core.status == "reconnecting":
                core.status = "center-lost"
                log.warning("gave up reconnecting: %s: %s", type(exc).__name__, exc)
                center_forgot(core, CenterLostError(f"{why}; gave up reconnecting: {exc}"))
            return
        if core.status != "reconnecting":  # closed meanwhile
            comm.close("client closing")
            return
        core.center = comm
        try:  # first on the connection: what follows belongs to the session resumed
            with core.lock:
                keys = core.state.held()
            session = await core.session.open(comm, core.replies, core.timeout, keys)
            # Before anything of the user's: an event logged once the executor runs
            # again reaches its handlers.
            await event_log.renew_subscriptions(core)
            break
        except (CommClosedError, TimeoutError, ClusterError):
            comm.close("no session")  # the center went again: try again
    core.envs.center = comm.peer_environment
    core.status = "running"
    core.connected.set()
    core.flush_outbox()
    if session is not None and session.resumed:
        # The center knew this client and its keys; those it does not know were submitted
        # just before it stopped and not recorded.
        lost = CenterLostError(f"{why}, and the center did not record the submission "
                               "before it stopped; submit it again")
        held = []
        for key in session.unknown:
            state = core.state.states.get(key)
            if state is not None and state.status == "pending":
                state.fail(lost, status="error")
            elif state is not None and state.done:
                held.append(key)
    else:
        held = center_forgot(core, CenterLostError(
            f"{why}, and the center reconnected to does not know this client (a restarted "
            "center starts empty); submit the work again"))
    # What this client held: a restarted center starts empty, so a key it does not know
    # is lost (data that it still finds on a worker stays usable).
    try:
        who_has = await core.data.who_has(held) if held else {}
    except ClusterError:
        return
    for key in held:
        state = core.state.states.get(key)
        if state is not None and state.status == "finished" and not who_has.get(key):
            state.fail(CenterLostError(
                f"{key}: {why}, and the center reconnected to does not know it (a "
                "restarted center starts empty); submit it again"), status="lost")
