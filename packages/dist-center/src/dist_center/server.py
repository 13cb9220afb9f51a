"""The center's asyncio shell: connections in, CenterState decides, messages out."""
from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dist_protocol import recent_logs
from dist_protocol.addresses import format_address, parse_address, reachable_host
from dist_protocol.comm import HANDSHAKE_TIMEOUT, Comm, Listener, listen
from dist_protocol.errors import CommClosedError, InvalidMessage
from dist_protocol.framing import DEFAULT_LIMITS, Limits
from dist_protocol.records import builder
from dist_protocol.timeouts import wait_for
from dist_protocol.messages import (Cancel, ClusterInfo, ClusterInfoReply, Coordinate,
                                    CoordinateReply, FireAndForget, Message,
                                    PublishDataset, UnpublishDataset, WantKeys, RegisterWorker,
                                    Release, Replicate, ReplicateReply, Restart, RestartReply,
                                    RestartWorkers, RestartWorkersReply,
                                    Retry, ScatterPlan, ScatterPlanReply, Session,
                                    SessionReply, Story,
                                    StoryReply,
                                    Submit, TaskErred, UploadFile, RegisterPlugin,
                                    UnregisterPlugin, WorkerAlive, downgrade)

from .held import LIMIT_IN_HEARTBEAT_TIMEOUTS
from .liveness import Liveness, Vouched
from .events import (ClientConnected, ClientDisconnected, ClientSent, CoordinationTimedOut,
                     DetachedTimedOut, Event, Recovering, RecoveryTimedOut, RestartTimedOut,
                     TaskFailed, TimeElapsed, WaitTimedOut, WorkerJoined, WorkerLeft,
                     WorkerSent)
from .memory import HeapTrimmer
from .sharing import is_holder
from .snapshot import state_events
from .state import CenterState
from .store import StateStore, chunks

if TYPE_CHECKING:
    from .dashboard import Dashboard

log = logging.getLogger("dist.center")

# The event of each message a peer sends, made with one change of class (``builder``).
client_sent = builder(ClientSent)
worker_sent = builder(WorkerSent)


# What clients send that the durable state follows from (the rest are questions).
JOURNALED_OPS = (Submit, Release, Cancel, Restart, PublishDataset, UnpublishDataset, WantKeys,
                 FireAndForget, Retry, UploadFile, RegisterPlugin, UnregisterPlugin)
# Requests the center may keep until what they wait for holds, or their timeout (``waits``).
WAITING_OPS = (ClusterInfo, ScatterPlan, Replicate)
# The ops whose timeout the center keeps a timer for, once handled (looked up by type: most
# batches hold none, and each message of them would be asked three times).
TIMED_OPS = frozenset((Restart, RestartWorkers, Coordinate, *WAITING_OPS))
# What answers each of them: its timer is no longer needed once that is sent.
REPLY_TO = {Restart: RestartReply, RestartWorkers: RestartWorkersReply,
            Coordinate: CoordinateReply, ClusterInfo: ClusterInfoReply,
            Replicate: ReplicateReply, ScatterPlan: ScatterPlanReply}
TIMED_REPLIES = frozenset(REPLY_TO.values())
# The journal is rewritten from the state once it holds this many more task specs than the
# state has tasks (tasks released since were written, and would be replayed, for nothing).
REWRITE_AFTER = 10_000


class Center:
    def __init__(self, address: str = "127.0.0.1:8787", *, token: str | None = None,
                 ssl_context=None, heartbeat_timeout: float = 5.0,
                 dashboard_port: int | None = None, limits: Limits = DEFAULT_LIMITS,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, state_dir: str | None = None,
                 state_dir_reset: bool = False, recovery_timeout: float | None = None,
                 resume_timeout: float = 120.0, worker_saturation: float | None = None):
        self.requested_address = address
        self.token = token
        self.ssl_context = ssl_context
        self.limits = limits  # what an authenticated peer may send
        self.handshake_timeout = handshake_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.dashboard_port = dashboard_port  # None: no dashboard
        self.dashboard: Dashboard | None = None
        self.state = CenterState()
        # (the newest lines of this process's log, for a client's get_scheduler_logs)
        self.state.worker_queries.own_logs = recent_logs.newest
        self.state.held.limit = LIMIT_IN_HEARTBEAT_TIMEOUTS * heartbeat_timeout
        if worker_saturation is not None:
            self.state.worker_saturation = worker_saturation
        self.memory = HeapTrimmer()
        self.comms: dict[str, Comm] = {}  # worker address or client id -> connection
        # Workers removed for silence -> their connections, left open: one that closes says
        # the worker died (a task it ran is then tried again at once, see ``held``); one that
        # speaks again is closed, and the worker registers anew.
        self.silent_comms: dict[str, Comm] = {}
        # When each worker, and its nanny for it, last spoke (``liveness``)
        self.liveness = Liveness(heartbeat_timeout,
                                 LIMIT_IN_HEARTBEAT_TIMEOUTS * heartbeat_timeout)
        self.address = ""
        self.bound_address = ""
        self.started = time.time()
        self._listener: Listener | None = None
        self._watchdog: asyncio.Task | None = None
        self._client_ids = itertools.count(1)
        self._timers: set[asyncio.TimerHandle] = set()
        # The timers of requests still waiting, by client and request id: a long-lived client
        # asking with long timeouts (a consumer's ``Queue.get(timeout=3600)`` in a loop) would
        # otherwise leave one behind for each request answered, and a client gone its own.
        # (Keyed by the reply awaited and the request's id: a peer may number each kind apart.)
        self._request_timers: dict[str, dict[tuple[type, int], asyncio.TimerHandle]] = {}
        self._local: dict[str, asyncio.Future] = {}  # the server's own requests, by client id
        self.closed = asyncio.Event()
        # With a state directory: the journal, how long to wait for the workers from before a
        # restart (by default, as long as a silent worker is given), and for its clients.
        self.state_dir, self.state_dir_reset = state_dir, state_dir_reset
        self.store: StateStore | None = None
        self.recovery_timeout = (max(10.0, 2 * heartbeat_timeout) if recovery_timeout is None
                                 else recovery_timeout)
        self.resume_timeout = resume_timeout
        self._commit_scheduled = False
        self._commit_warned = -1e9  # when the last failure to write the state was logged
        self._client_of: dict[Comm, str] = {}  # client connection -> its session's id

    async def start(self, sock: socket.socket | None = None) -> None:
        """Recover (with a state directory) and serve: on ``sock`` if given, a socket already
        listening on the requested address (``dcenter`` binds it before importing the center,
        so that workers and clients can connect while it does)."""
        if self.state_dir is not None:
            self._recover()  # before listening: nobody is told anything until it is done
        self._listener = await listen(self.requested_address, self._on_comm, token=self.token,
                                      ssl_context=self.ssl_context, who="center",
                                      limits=self.limits,
                                      handshake_timeout=self.handshake_timeout, sock=sock)
        # Bound everywhere, it tells workers and clients an address they can reach instead.
        self.bound_address = self._listener.address
        scheme, host, port = parse_address(self.bound_address)
        self.address = format_address(reachable_host(host), port, scheme)
        if self.dashboard_port is not None:
            from .dashboard import Dashboard
            self.dashboard = Dashboard(self, port=self.dashboard_port)
            await self.dashboard.start()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_heartbeats())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
        for timer in self._timers:
            timer.cancel()
        if self.dashboard is not None:
            await self.dashboard.close()
        for comm in [*self.comms.values(), *self.silent_comms.values()]:
            comm.close("center closing")
        if self.store is not None:
            self.store.close()
        self.closed.set()

    # -- the state directory ---------------------------------------------------------------------
    def _recover(self) -> None:
        """Open the journal (``StateDirError`` when it cannot be used) and replay it."""
        assert self.state_dir is not None
        self.store = StateStore(self.state_dir, reset=self.state_dir_reset)
        recovered = self.store.load()
        for events in chunks(recovered.events):
            self.state.handle(*events)  # what it would have sent then is old news
        self.state.take_outgoing()
        numbers = [int(client.split("-")[1]) for client in self.state.clients
                   if client.startswith("client-") and client.split("-")[1].isdigit()]
        self._client_ids = itertools.count(max(numbers, default=0) + 1)
        self._handle(Recovering(frozenset(recovered.workers)))
        if self.store.dirty:
            self.store.commit()
        if recovered.events:
            log.warning("recovered from %s: %d tasks, %d clients; waiting for %d workers",
                        self.state_dir, len(self.state.tasks),
                        sum(not is_holder(client) for client in self.state.clients),
                        len(self.state.awaiting_workers))
        loop = asyncio.get_running_loop()
        if self.state.recovering:
            self._timers.add(loop.call_later(self.recovery_timeout, self._handle,
                                             RecoveryTimedOut()))
        if self.state.detached:
            self._timers.add(loop.call_later(self.resume_timeout, self._handle,
                                             DetachedTimedOut()))

    def _journal(self, events: tuple[Event, ...]) -> None:
        """Record what the durable state follows from; committed once per loop turn."""
        store = self.store
        assert store is not None
        for event in events:
            kind = type(event)
            if kind is WorkerSent:
                msg = event.message  # type: ignore[union-attr]
                if type(msg) is TaskErred and not msg.reschedule:  # (a reschedule: not failed)
                    ts = self.state.tasks.get(msg.key)
                    if ts is not None and ts.processing_on == event.worker:  # type: ignore[union-attr]
                        store.record(TaskFailed(msg.key, msg))
            elif kind is ClientSent:
                client, msg = event.client, event.message  # type: ignore[union-attr]
                if client in self._local:
                    continue
                if isinstance(msg, JOURNALED_OPS) or (type(msg) is Session and msg.resume):
                    store.record(event)
            elif kind is ClientConnected or kind is ClientDisconnected:
                if event.client not in self._local:  # type: ignore[union-attr]
                    store.record(event)
            elif kind is WorkerJoined:
                store.worker_joined(event.registration.address)  # type: ignore[union-attr]
            elif kind is WorkerLeft:
                store.worker_left(event.worker)  # type: ignore[union-attr]
            elif kind is Recovering or kind is DetachedTimedOut:
                store.record(event)
        if store.dirty and not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        """Group commit: whatever this turn of the event loop recorded, in one fsync."""
        self._commit_scheduled = False
        if self.store is None:
            return
        import sqlite3  # only with a state directory, whose store imported it already

        try:
            self.store.commit()
            if self.store.tasks_written > 2 * len(self.state.tasks) + REWRITE_AFTER:
                self.store.rewrite(state_events(self.state), self.state.workers)
        except (sqlite3.Error, OSError) as exc:
            # Nothing recorded is dropped: it is written with the next commit that succeeds.
            # Until then, a crash would lose it: say so, once a minute at most.
            now = time.monotonic()
            if now - self._commit_warned > 60:
                self._commit_warned = now
                log.error("cannot write the center's state to %s: %s; it stays in memory "
                          "and is written once the directory can be written again",
                          self.state_dir, exc)
            if not self._commit_scheduled:  # try again in a second, new events or not
                self._commit_scheduled = True
                self._later(1.0, self._commit)

    # -- dispatch -------------------------------------------------------------------------------
    def _handle(self, *events) -> None:
        compactions = self.state.compactions
        if self.store is not None:
            self._journal(events)
        # One send per connection, with everything for it in order: a connection's checks and
        # its lock are paid once per turn, not once per message.
        outgoing: dict[Comm, list[Message]] = {}
        # Per recipient of this step: its connection's queue, its features and the types of
        # message it takes as they are (a map's step alternates between a worker and a client:
        # one look-up a message, not a connection's and a queue's and a ``downgrade`` each).
        recipients: dict[str, tuple[list[Message], frozenset[str], set[type],
                                    dict[tuple[type, int], asyncio.TimerHandle] | None]] = {}
        request_timers = self._request_timers
        for to, message in self.state.handle(*events):
            if type(message) is SessionReply and message.resumed and message.client != to:
                self._rename(to, message.client)
                recipients.clear()
                to = message.client  # (the connection's name from now on, this reply too)
            recipient = recipients.get(to)
            if recipient is None:
                comm = self.comms.get(to)
                if comm is None:
                    waiter = self._local.get(to)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                    continue
                queued = outgoing.get(comm)
                if queued is None:
                    queued = outgoing[comm] = []
                recipient = recipients[to] = (queued, comm.features, set(),
                                              request_timers.get(to))
            queued, features, as_they_are, timers = recipient
            kind = type(message)
            if timers and kind in TIMED_REPLIES:
                self._answered(to, timers, (kind, message.id))  # type: ignore[attr-defined]
            if message.gated_fields and kind not in as_they_are:
                # e.g. no pickled exception for a non-Python client
                downgraded = downgrade(message, features)
                if downgraded is message:  # (it depends on the type and the features alone)
                    as_they_are.add(kind)
                message = downgraded
            queued.append(message)
        for comm, messages in outgoing.items():
            try:
                comm.send(*messages)
            except CommClosedError:
                pass  # its close callback tells the state
        if self.state.compactions != compactions:
            self.memory.trim()

    async def story(self, keys: list[str], timeout: float = 5.0) -> list[dict]:
        """A key's story for the dashboard: asked as a client would, so the workers' logs are
        in it; after ``timeout`` (a worker slow to answer), the center's own log alone."""
        client = f"dashboard-{next(self._client_ids)}"
        waiter = self._local[client] = asyncio.get_running_loop().create_future()
        try:
            self._handle(ClientConnected(client), ClientSent(client, Story(id=1, keys=keys)))
            reply = await wait_for(waiter, timeout)
            return reply.entries if isinstance(reply, StoryReply) else []
        except TimeoutError:
            return [{"key": key, "start": start, "finish": finish, "stimulus_id": sid,
                     "time": when, "worker": ""}
                    for key, start, finish, sid, when in self.state.story(*keys)]
        finally:
            del self._local[client]
            self._handle(ClientDisconnected(client))

    def _rename(self, current: str, previous: str) -> None:
        """The connection of client ``current`` resumed the session ``previous``."""
        comm = self.comms.pop(current, None)
        if comm is not None:
            self.comms[previous] = comm
            self._client_of[comm] = previous

    # -- connections ----------------------------------------------------------------------------
    async def _on_comm(self, comm: Comm) -> None:
        if comm.peer_role == "client":
            self._serve_client(comm)
        elif comm.peer_role == "worker":
            await self._serve_worker(comm)
        else:
            comm.abort(InvalidMessage(f"the center serves clients and workers, "
                                      f"not {comm.peer_role}s"))

    def _later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """``callback()`` in ``delay`` seconds (a timer the center forgets once fired)."""
        def fire() -> None:
            self._timers.discard(timer)
            callback()
        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)
        return timer

    def _after(self, delay: float, client: str, msg: Message, event: Event) -> None:
        """``event`` happens in ``delay`` seconds unless ``client``'s request ``msg`` is
        answered first or the client goes."""
        request = (REPLY_TO[type(msg)], msg.id)  # type: ignore[attr-defined]

        def fire() -> None:
            timers = self._request_timers.get(client)
            if timers is not None and timers.get(request) is timer:  # (an id used again: not)
                self._answered(client, timers, request)
            self._handle(event)
        timer = self._later(delay, fire)
        self._request_timers.setdefault(client, {})[request] = timer

    def _answered(self, client: str, timers: dict[tuple[type, int], asyncio.TimerHandle],
                  request: tuple[type, int]) -> None:
        timer = timers.pop(request, None)
        if timer is not None:
            timer.cancel()
            self._timers.discard(timer)
        if not timers and self._request_timers.get(client) is timers:
            del self._request_timers[client]

    def _forget_timers(self, client: str) -> None:
        """A client gone: nobody would read what its requests' timeouts would answer."""
        for timer in self._request_timers.pop(client, {}).values():
            timer.cancel()
            self._timers.discard(timer)

    def pending_timers(self) -> int:
        """Timers set and not yet fired or cancelled (the census of a long-lived center)."""
        return len(self._timers)

    def _serve_client(self, comm: Comm) -> None:
        client = f"client-{next(self._client_ids)}-{comm.peer_name or ''}"
        self.comms[client] = comm
        self._client_of[comm] = client  # (changes when the connection resumes a session)

        def on_messages(messages: list[Message]) -> None:
            # (Only what clients send to the center gets here: see the workers' on_messages.)
            start = 0
            for end, msg in enumerate(messages, 1):
                if type(msg) is Session:  # it may rename the sender: what follows is its
                    client = self._client_of[comm]
                    self._handle(*[client_sent(client, m) for m in messages[start:end]])
                    start = end
            client = self._client_of[comm]
            if start < len(messages):
                self._handle(*[client_sent(client, m) for m in messages[start:]])
            for msg in messages:
                if type(msg) not in TIMED_OPS:
                    continue
                if isinstance(msg, Restart):  # the center answers when the workers are back
                    self._after(msg.timeout, client, msg, RestartTimedOut(client, msg.id))
                elif isinstance(msg, RestartWorkers) and msg.timeout \
                        and self.state.worker_restarts.pending(client, msg.id):
                    self._after(msg.timeout, client, msg,
                                WaitTimedOut(client, msg.op, msg.id))
                elif isinstance(msg, Coordinate) and msg.timeout \
                        and self.state.coordination.waits(client, msg.id):
                    self._after(msg.timeout, client, msg, CoordinationTimedOut(client, msg.id))
                elif isinstance(msg, WAITING_OPS) and msg.timeout and msg.id is not None \
                        and self.state.waits.pending(client, msg.op, msg.id):
                    self._after(msg.timeout, client, msg, WaitTimedOut(client, msg.op, msg.id))

        def on_close(_: Comm) -> None:
            client = self._client_of.pop(comm)
            if self.comms.get(client) is comm:
                del self.comms[client]
            self._forget_timers(client)
            self._handle(ClientDisconnected(client))

        self._handle(ClientConnected(client, comm.features))
        comm.set_handler(on_messages)
        comm.on_close(on_close)

    async def _serve_worker(self, comm: Comm) -> None:
        try:
            first = await wait_for(comm.recv(), 10)
        except (TimeoutError, CommClosedError):
            comm.close("no registration")
            return
        if isinstance(first, WorkerAlive):
            self._serve_nanny(comm, first)
            return
        if not isinstance(first, RegisterWorker):
            comm.abort(InvalidMessage(f"a worker must register first, not send {first.op!r}"))
            return
        address = first.address
        old = self.comms.get(address) or self.silent_comms.pop(address, None)
        if old is not None and old is not comm:
            old.close("replaced by a new registration")
        self.comms[address] = comm
        self.liveness.heard(address, time.monotonic())
        log.info("worker %s registered (%d threads, %d keys)", address, first.nthreads,
                 len(first.keys))

        def on_messages(messages: list[Message]) -> None:
            # (The connection let through only what workers send to the center: the listener's
            # connections check each op's direction against the peer's role.)
            if self.silent_comms.get(address) is comm:  # awake again: it registers anew
                del self.silent_comms[address]
                comm.close("heartbeat timeout")
                return
            self.liveness.heard(address, time.monotonic())
            self._handle(*[worker_sent(address, msg) for msg in messages])

        def on_close(_: Comm) -> None:
            if self.comms.get(address) is comm:
                del self.comms[address]
                self.liveness.forget(address)
                self._handle(WorkerLeft(address, comm.close_reason or "connection closed"))
            elif self.silent_comms.get(address) is comm:  # it did die, after its silence
                del self.silent_comms[address]
                self._handle(WorkerLeft(address, comm.close_reason or "connection closed"))

        self._handle(WorkerJoined(first, comm.peer_environment, comm.features))
        comm.set_handler(on_messages)
        comm.on_close(on_close)

    def _serve_nanny(self, comm: Comm, first: WorkerAlive) -> None:
        """A worker's nanny, on a connection of its own, says its worker process runs."""
        if "nanny-vouch" not in comm.features:
            comm.abort(InvalidMessage("worker-alive needs the feature nanny-vouch"))
            return
        self.liveness.vouched(first.address, time.monotonic())

        def on_messages(messages: list[Message]) -> None:
            for msg in messages:
                if isinstance(msg, WorkerAlive):
                    self.liveness.vouched(msg.address, time.monotonic())
                else:
                    comm.abort(InvalidMessage(f"a nanny sends worker-alive only, not {msg.op!r}"))
                    return

        comm.set_handler(on_messages)

    async def _watch_heartbeats(self) -> None:
        """A worker that stops talking (hung, partitioned) is declared gone after the timeout,
        unless its nanny says its process runs (``liveness``)."""
        interval = min(1.0, self.heartbeat_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self._handle(TimeElapsed())
            for found in self.liveness.look(time.monotonic()):
                address, silence = found.address, found.silence
                if isinstance(found, Vouched):
                    log.warning("worker %s silent for %.1f s, but its nanny says its process "
                                "runs (a task holding the interpreter lock?): kept, for up to "
                                "%.0f s of silence", address, silence,
                                self.liveness.vouched_limit)
                    continue
                log.warning("worker %s silent for %.1f s: removing it", address, silence)
                comm = self.comms.pop(address, None)
                if comm is not None:
                    self.silent_comms[address] = comm
                self._handle(WorkerLeft(address, f"no heartbeat for {silence:.1f} s",
                                        silent=True))
                for key, hold in self.state.held.holds.items():
                    if hold.workers[-1] == address and hold.since == self.state.now:
                        log.warning("task %s held: workers %s went silent running it; it "
                                    "waits for one to come back", key, ", ".join(hold.workers))
