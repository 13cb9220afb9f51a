"""The client's core: one connection to the center, the keys it holds, and the bridge between
the caller (a thread, or a coroutine on the caller's own event loop) and the I/O loop.

The I/O loop runs on a thread of its own. Every decision about keys is ``ClientState``'s, fed
under one lock from whichever thread has news (user threads, ``__del__``, the I/O thread). The
operations (``operations.py``) are coroutines on the I/O loop; ``run`` waits for one from a
thread, ``call`` awaits one from another event loop. ``Executor`` and ``AsyncExecutor`` are
facades over this class, so each operation exists once. Starting and closing are
``lifecycle``'s, living through a lost center ``reconnecting``'s, keeping results before a
shutdown ``keeping``'s: each acts on this class through a small interface of its own.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import ssl
import threading
import time
import sys
import uuid
import warnings
import weakref
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from dist_protocol.comm import Comm, connect
from dist_protocol.features import connecting_features
from dist_protocol.messages import (ClusterInfo, Coordinate, CoordinateReply, KeyCancelled, Message,
                                    Published, Submit)
from dist_protocol.replies import PendingReplies
from dist_protocol.security import load_token, ssl_context

from .. import foreign_futures, reconnect, shutdown, transfer, worker_events
from ..data_paths import DataPaths
from ..environments import ClusterEnvironments
from ..errors import ClusterError
from ..event_log import EventHandlers
from .. import worker_queries
from ..future import Future
from ..script_module import send_spawned_script_by_value
from ..primitives import Topics
from ..spans import SpanKeys, current_span
from .keystate import KeyState
from .loop import LoopThread
from .cancelling import Cancelling
from . import keeping, lifecycle, reconnecting
from .release_timer import ReleaseTimer
from .submitting import Submitter
from .state import ClientState, Fail, Finish, Order, Recompute
from .waiters import settled_async

log = logging.getLogger("dist_client")

_cores: weakref.WeakSet[ClientCore] = weakref.WeakSet()  # every client of this process


def _after_fork_in_child() -> None:
    for core in list(_cores):
        core.after_fork_in_child()


class ClientCore:
    """A connection to a dist center, shared by the facades and the Futures of one client."""

    def __init__(self, address: str | None, *, token: str | None = None,
                 token_file: str | None = None, name: str | None = None,
                 timeout: float = 10.0, tls_cert: str | None = None, tls_key: str | None = None,
                 tls_ca: str | None = None, reconnect_timeout: float = 60.0,
                 tls_context: ssl.SSLContext | None = None):
        send_spawned_script_by_value()
        self.cluster: Any = None  # the LocalCluster this client started, if any
        self.address = address or ""
        self.token = load_token(token, token_file)
        self.pid = os.getpid()  # a child forked from this process has the connection's copy
        self.forked = False  # this is that copy (see after_fork_in_child)
        self.id = name or f"{socket.gethostname()}-{self.pid}-{uuid.uuid4().hex[:8]}"
        self._status = "connecting"
        self.timeout = timeout
        # After losing the center, how long to keep trying to reconnect (0: never).
        self.reconnect_timeout = reconnect_timeout
        self.accepting = True  # False once shut down: new work is refused, results still arrive
        # The facade whose futures these are: futures made here hold it, as the user's do.
        self.facade: Callable[[], Any] = lambda: None
        # A ready TLS context (a worker's, for its tasks' executor), else one from the files.
        self._ssl = tls_context or ssl_context(False, tls_cert, tls_key, tls_ca)
        self.ssl_context = self._ssl  # what actor handles of this process connect with
        self.topics = Topics()  # the subscribers (primitives.Sub) of this client, by topic
        self.event_handlers = EventHandlers(lambda: self.io.loop)  # subscribe_topic's
        # Every decision about keys and what the center is told is the state's; this lock
        # serialises the threads (user threads, __del__, the I/O thread) that feed it.
        self.lock = threading.RLock()
        # Notified when the center's word on cancelled keys arrives (or the center is lost).
        self.cancels_heard = threading.Condition(self.lock)
        self.state = ClientState()
        self.state.releasing = False  # (until running)
        _cores.add(self)
        self._flush_scheduled = False
        self.release_timer = ReleaseTimer()  # the I/O thread sends the releases waiting soon
        # A thread wrote to the center itself, and the center has not said anything since.
        self._answer_due = False
        self.replies = PendingReplies()  # requests to the center awaiting their reply
        self.io = LoopThread()
        self.center: Comm | None = None
        self.connected = threading.Event()  # set while running: submits wait on a reconnect
        self.counted_open = False  # in dask_defaults' count of open executors
        self.session = reconnect.SessionInfo()
        self.envs = ClusterEnvironments()
        self._wire()
        self._refreshing = False
        # The workers as the center last listed them: what repr shows, without asking again.
        self.workers_seen: list[dict] = []
        self.center_started: float | None = None  # when it started (older centers: unknown)
        self._warnings: list[str] = []  # for the caller's thread, where they are shown
        self.submitter = Submitter(self)  # what the submits and maps queue for the center
        self.cancelling = Cancelling(self)  # the cancels and retries of its futures
        self.span_keys = SpanKeys()  # the keys sent inside each ``span`` block

    def _wire(self) -> None:
        """The paths to the workers, for the center at ``address``."""
        self.worker_connections = transfer.WorkerConnections(self.token, self._ssl, self.id)
        # (the dict's own ``get``: looked up for each key a gather reads, no call of ours)
        self.data = DataPaths(self.address, self.ask, lambda: self.center,
                              self.state.states.get, self.worker_connections, self.envs)

    @property
    def status(self) -> str:
        """connecting, running, reconnecting, center-lost, closing or closed."""
        return self._status

    @status.setter
    def status(self, status: str) -> None:
        with self.lock:
            # The Futures dropped before are counted off as things stood: released to the
            # center while running (as ``unhold`` would have released them then).
            self.state.take_drops()
            self._status = status
            self.state.releasing = status == "running"

    def belongs_to(self, facade: Any) -> None:
        self.facade = weakref.ref(facade)

    def future(self, key: str, state: KeyState | None = None) -> Future:
        return Future(key, self.facade(), state)

    # -- starting -------------------------------------------------------------------------------
    def start_local_cluster(self, options: dict[str, Any]) -> None:
        """Start the local cluster ``LocalCluster(**options)`` and connect to it."""
        from ..local import LocalCluster
        self.cluster = LocalCluster(**options)
        self.address, self.token = self.cluster.address, self.cluster.token
        self._wire()

    async def start(self, local: dict[str, Any] | None = None,
                    set_as_default: bool = True) -> None:
        """Connect (``lifecycle.start``)."""
        await lifecycle.start(self, local, set_as_default)

    def start_blocking(self, set_as_default: bool = True) -> None:
        try:
            self.run(self.start(set_as_default=set_as_default), allow_starting=True)
        except BaseException:
            self.abandon()
            raise

    async def start_async(self, local: dict[str, Any] | None = None,
                          set_as_default: bool = True) -> None:
        try:
            await self.call(self.start(local, set_as_default), allow_starting=True)
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """After a failed start: nothing stays open (``lifecycle.abandon``)."""
        lifecycle.abandon(self)

    # -- the bridge between the caller and the I/O loop ---------------------------------------
    def run(self, coro: Coroutine, timeout: float | None = None, *,
            allow_starting: bool = False) -> Any:
        """Run ``coro`` on the I/O loop and wait for its result in this thread."""
        if self.status in ("closing", "closed") or (self.status == "connecting"
                                                      and not allow_starting):
            coro.close()
            raise self.not_running()
        if self.forked:
            coro.close()
            raise self.forked_error()
        result = self.io.run(coro, timeout)
        self.show_warnings()
        return result

    async def call(self, coro: Coroutine, *, allow_starting: bool = False) -> Any:
        """Await ``coro``, run on the I/O loop, from the caller's event loop: no thread in
        between. Cancelling the caller's await cancels it there."""
        if self.status in ("closing", "closed") or (self.status == "connecting"
                                                      and not allow_starting):
            coro.close()
            raise self.not_running()
        result = await self.io.run_async(coro)
        self.show_warnings()
        return result

    def show_warnings(self) -> None:
        """Warnings an operation found on the I/O thread, shown in the caller's thread."""
        while self._warnings:
            warnings.warn(self._warnings.pop(0), UserWarning, stacklevel=_callers_level())

    def in_forked_child(self) -> bool:
        """This process was forked from the one that opened the client: the connection, the
        I/O thread (which did not survive the fork) and the local cluster are that process's,
        which goes on using them."""
        return self.forked

    def after_fork_in_child(self) -> None:
        """A fork copies the locks as they were: one the I/O thread held then (a thread that
        does not exist in the child) would stay held for ever, and the first Future the child
        drops would wait on it. The copy gets fresh ones, and knows it is a copy."""
        self.forked = True
        self.lock = threading.RLock()
        self.cancels_heard = threading.Condition(self.lock)

    def forked_error(self) -> ClusterError:
        return ClusterError(f"this executor was opened in process {self.pid}, from which this "
                            f"process ({os.getpid()}) was forked: its connection is that "
                            "process's, and nothing can arrive here; open an Executor in this "
                            "process to use the cluster")

    def not_running(self) -> ClusterError:
        if self.status in ("closing", "closed"):
            return shutdown.refused(self)
        return ClusterError(f"this executor is {self.status}; results cannot arrive")

    # -- the connection -------------------------------------------------------------------------
    async def connect(self) -> Comm:
        try:
            comm = await connect(self.address, role="client", token=self.token, name=self.id,
                                 ssl_context=self._ssl, timeout=self.timeout,
                                 features=connecting_features(worker_events.REQUESTED))
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the center at {self.address}: {exc}") from None
        comm.set_handler(self._on_center_messages)
        comm.on_close(functools.partial(reconnecting.center_lost, self))
        comm.write_from_threads()  # submits are written by the threads that make them
        return comm

    def _on_center_messages(self, messages: list[Message]) -> None:
        with self.lock:
            self._answer_due = False  # the connection is idle again, as far as we know
            # Armed on this wake-up, which the I/O thread has anyway: the Futures dropped
            # after this news (the caller read its value) need no wake-up of their own. The
            # timer itself is made once the keys are settled, off the waiting caller's path.
            release_delay = self.release_timer.arm()
            cancels_heard = False
            for msg in messages:
                if type(msg) is KeyCancelled:
                    cancels_heard = True
                elif type(msg) is CoordinateReply and msg.keys:
                    # Held before the center's news of these keys (after the reply) is read;
                    # the futures made from the reply take these holds over (primitives.py).
                    for key in msg.keys:
                        self.state.hold(key)
            orders = self.state.center_sent(messages)
            if cancels_heard:
                self.cancels_heard.notify_all()
        try:
            self.carry_out(orders)
        finally:
            if release_delay is not None:
                self.io.loop.call_later(release_delay, self._release_due)

    def carry_out(self, orders: Iterable[Order]) -> None:
        """What the client's state decided, done: the one place a key's state settles (outside
        the lock, as it wakes waiters and calls callbacks)."""
        for order in orders:
            if isinstance(order, Finish):
                msg = order.message
                order.state.finish(msg.nbytes, msg.type, msg.workers, msg.value,
                                   msg.type_pickled)
            elif isinstance(order, Fail):
                order.state.fail(order.exception, order.traceback, order.status)
            elif isinstance(order, Recompute):
                order.state.recomputing()
            elif type(order.message) is Published:
                if order.message.kind == "log":
                    self.event_handlers.deliver(order.message)
                else:
                    self.topics.deliver(order.message, self._unsubscribe)
            elif type(order.message) in worker_events.EVENTS:
                self._worker_event(order.message)
            else:
                self.replies.received(order.message)

    def why_late(self) -> str:
        """What to add to a wait's ``TimeoutError``: the workers known to be unable to spill
        (they pause, and tasks kept to them wait); empty when none is."""
        return worker_events.disk_stalls(self.workers_seen)

    def _worker_event(self, msg: Message) -> None:
        self.workers_seen = worker_events.apply(msg, self.workers_seen, self.envs,
                                                time.monotonic())
        self._warnings += self.envs.new_differences()

    async def ask(self, make: Callable[[int], Message]) -> Any:
        """Send a request to the center and wait for its reply (on the I/O loop)."""
        if self.center is None or self.center.is_closed:
            raise ClusterError(f"no connection to the center at {self.address}")
        self.flush_outbox()  # releases still waiting go first, in the order they were made
        return await self.replies.request(self.center, make)

    def _unsubscribe(self, topic: str) -> None:
        """Every Sub of ``topic`` here was dropped unclosed: the center stops sending it."""
        def retrieved(task: asyncio.Future) -> None:
            if not task.cancelled():
                task.exception()  # (a center gone meanwhile unsubscribes us anyway)
        self.io.loop.create_task(self.ask(lambda i: Coordinate(
            id=i, kind="topic", name=topic, action="unsubscribe"))).add_done_callback(retrieved)

    def task_running(self, name: str) -> bool:
        """Whether the call of the task ``name`` runs on a worker now (``Future.running``),
        asked of the workers; False on the I/O thread, which cannot wait for the answer."""
        if self.io.in_loop_thread:
            return False
        return bool(self.run(worker_queries.running(self, name)))

    def until_connected(self) -> None:
        """While reconnecting, wait (a while) for the center to be back, from a user thread."""
        if self.forked:
            raise self.forked_error()  # (the connection's socket is the parent's: no write)
        if self.status == "reconnecting" and not self.io.in_loop_thread:
            self.connected.wait(self.timeout)
        if self.status != "running" or self.center is None:
            raise self.not_running()

    # -- what the center is told, in order (from any thread) ------------------------------------
    def send(self, *messages: Message) -> None:
        """Queue messages for the center, in order with the releases."""
        self.until_connected()
        if current_span() is not None:
            self._in_span(messages)
        with self.lock:
            if self.state.queue(*messages):
                self._schedule_flush(now=True)

    def queue_now(self, message: Message) -> None:
        """With the lock held, once ``until_connected`` has passed: ``send``."""
        if current_span() is not None:
            self._in_span((message,))
        if self.state.queue(message):
            self._schedule_flush(now=True)

    def _in_span(self, messages: Iterable[Message]) -> None:
        """Tasks sent inside a ``span`` block: recorded as the span's (``spans``)."""
        for msg in messages:
            if type(msg) is Submit:
                self.span_keys.sent(task.key for task in msg.tasks)

    def hold(self, key: str, state: KeyState | None = None) -> KeyState:
        """One more handle on ``key`` (a Future made)."""
        with self.lock:
            return self.state.hold(key, state)

    def unhold(self, key: str, state: KeyState | None = None) -> None:
        """One handle fewer (a key's hold taken over by a Future, a queue's put-back;
        ``state``: the one the handle holds)."""
        if self.forked:
            return  # the key is the parent's, which holds its own handles on it
        try:
            with self.lock:
                if self.state.unhold(key, release=self.status == "running", state=state):
                    self.schedule_release()
        except RuntimeError:
            pass  # the interpreter or the I/O loop is shutting down

    def release_handle(self, state: KeyState) -> None:
        """A Future of ``state`` released by its holder (``Future.release``)."""
        if self.forked:
            return  # the key is the parent's, which holds its own handles on it
        try:
            with self.lock:
                queued, cancel = self.state.unhold_released(state, self.status == "running")
                if queued:
                    self.schedule_release()
        except RuntimeError:
            return  # the interpreter or the I/O loop is shutting down
        if cancel is None:
            return
        # Settled on the I/O thread, as every order is (this handle's own waits raise at
        # once: ``Future``); by this thread only where no loop runs to do it.
        if self.io.in_loop_thread or not self.io.loop.is_running():
            self.carry_out([cancel])
            return
        try:
            self.io.call(self.carry_out, [cancel])
        except RuntimeError:  # the loop closed meanwhile
            self.carry_out([cancel])

    def drop(self, state: KeyState) -> None:
        """A Future of ``state`` dropped (``Future.__del__``, from any thread): its handle is
        counted off by the state's next call (``ClientState.dropped``), which the release
        timer makes soon. Only a drop that finds the timer idle takes the lock, to arm it:
        the timer disarms before it takes the drops, so a drop that finds it armed is in the
        drops it will take."""
        if self.forked:
            return  # the key is the parent's, which holds its own handles on it
        if self._status != "running":
            # No timer may fire any more (closed) or soon (reconnecting): counted off now.
            self.unhold(state.key, state)
            return
        self.state.dropped.append(state)
        if self.release_timer.armed:
            return
        try:
            with self.lock:
                self.schedule_release()
        except RuntimeError:
            pass  # the interpreter or the I/O loop is shutting down

    def cancel_keys(self, keys: list[str], pending_only: bool = False,
                    force: bool = False) -> None:
        self.until_connected()
        with self.lock:
            if self.state.cancel(keys, pending_only, force):
                self._schedule_flush(now=True)

    def _schedule_flush(self, now: bool = False) -> None:
        """With the lock held: the outbox goes to the center. With ``now`` (work the caller
        may wait for) this thread writes it itself when the connection is idle -- nothing to
        write, and the center has said something since this client last wrote that way --
        sparing the trip through the I/O thread (a wake-up and two thread switches) a thread
        that submits and waits, one task at a time. A burst of submits (a chain, a loop of
        submits) goes through the I/O thread, batched: one message to the center, not one
        each. Releases (nobody waits on them) go with the next message or soon."""
        center = self.center
        if now and not self._answer_due and center is not None and not self.io.in_loop_thread:
            messages = self.state.take_outbox()
            try:
                if center.write_now(*messages):
                    self._answer_due = True
                    return
            except Exception:  # noqa: BLE001 -- the I/O thread sends them and says what failed
                pass
            self.state.put_back(messages)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.io.call(self.flush_outbox)

    def schedule_release(self) -> None:
        """With the lock held: a release is queued. Nobody waits on one, so from a user thread
        it goes with that thread's next message to the center (a submit, say) or, failing
        that, on the I/O thread's timer (``release_timer``): one wake-up of the I/O thread for
        any number of releases, rather than one for each Future dropped."""
        if self.io.in_loop_thread:
            self._schedule_flush()
        else:
            delay = self.release_timer.arm()
            if delay is not None:
                self.io.call(self.io.loop.call_later, delay, self._release_due)

    def _release_due(self) -> None:
        with self.lock:
            self.release_timer.disarm()  # before the drops are taken (see ``drop``)
            self.release_timer.fired(self.state.has_outbox())
        self.flush_outbox()

    def flush_outbox(self) -> None:
        center = self.center
        with self.lock:  # taken and queued at once: a thread's write_now cannot come between
            self._flush_scheduled = False
            messages = self.state.take_outbox()
            if center is None or center.is_closed:
                if self.status == "reconnecting":  # sent once connected again, in order
                    self.state.put_back(messages)
                return
            if messages:
                center.send(*messages)
        center.flush()  # in this pass of the loop, not the next

    async def value_of(self, state: KeyState) -> Any:
        """The value of one key once it is computed (fetched from a worker that holds it),
        or the task's exception."""
        await settled_async([state])
        if state.status != "finished":
            raise state.failure
        small = state.small
        if small is not None:
            return transfer.load_one(small)
        return (await self.data.values([state.key]))[state.key]

    # -- the workers and what they run ----------------------------------------------------------
    def center_has(self, feature: str) -> bool:
        """Whether the connection to the center agreed ``feature``."""
        center = self.center
        return center is not None and feature in center.features

    async def refresh_workers(self, min_workers: int | None = None,
                              timeout: float | None = None) -> list[dict]:
        """The workers as the center lists them now (and what they run). With
        ``min_workers`` (only where the center agreed ``waits``): once that many are
        registered, or as they are after ``timeout`` seconds."""
        reply = await self.ask(lambda i: ClusterInfo(id=i, min_workers=min_workers,
                                                     timeout=timeout))
        workers = reply.workers
        self.center_started = reply.started
        if self.envs.fed:  # the events keep the view: this reply may be older than some
            self.workers_seen = worker_events.merge_reply(workers, self.workers_seen, self.envs)
            return workers
        self.workers_seen = workers
        self.envs.update(workers, time.monotonic())
        self._warnings += self.envs.new_differences()
        return workers

    def check_pickled_code(self, options: dict, refresh: bool = True,
                           code: bool = True) -> None:
        """Before a task is sent: the executor runs, and, when the task's function holds
        Python ``code``, no worker it may land on runs another Python. Where
        the center tells of workers joining and leaving (``worker-events``) the view is always
        current. Otherwise it is refreshed when older than a second: with ``refresh`` one
        round trip here (from a thread), else in the background. Past three quarters of a
        second it is refreshed in the background already, so that steady submits never wait."""
        if self.status != "running" or self.center is None:
            raise ClusterError(f"this executor is {self.status}; results cannot arrive")
        if not code:
            return
        due = self.envs.refresh_due(time.monotonic())
        if due == "wait" and refresh and not self.io.in_loop_thread:
            self.run(self.refresh_workers())
        elif due is not None and not self._refreshing:
            self._refreshing = True
            self.io.call(lambda: self.io.loop.create_task(self._refresh_quietly()))
        self.envs.check_submit(options["workers"], options["allow_other_workers"])

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_workers()
        except ClusterError:
            pass  # the next submit or call says what is wrong
        finally:
            self._refreshing = False

    def refuse_foreign(self, futures: Any, what: str = "a task") -> None:
        """``ValueError`` for futures of an executor on another cluster among ``futures``."""
        foreign_futures.refuse(self, futures, what)

    # -- closing --------------------------------------------------------------------------------
    def cancel_everything(self, why: str, finished_too: bool = False) -> None:
        """Every future not done (``finished_too``: every one) fails as cancelled, ``why``
        saying what ended them: the executor closed, the cluster restarted."""
        with self.lock:
            fails = self.state.cancel_everything(why, finished_too)
        self.carry_out(fails)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        shutdown.shut(self, wait, cancel_futures)

    def close(self, timeout: float | None = None) -> None:
        """Close the connection and the local cluster (``lifecycle.close``)."""
        lifecycle.close(self, timeout)

    async def close_async(self, timeout: float | None = None) -> None:
        """``close``, awaited on the caller's event loop."""
        await lifecycle.close_async(self, timeout)

    def keep_results(self, budget: int) -> None:
        """Wait for every held future, then copy results (up to ``budget`` bytes in all) into
        the client, so they stay readable once the connection is closed (``keeping``)."""
        self.run(keeping.keep_results(self, budget))

    def held_count(self) -> int:
        with self.lock:
            return len(self.state.held_states())

    def pending_count(self) -> int:
        """How many of the held futures are not done."""
        with self.lock:
            return len(self.state.pending())


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside this package, from a function of it that
    calls ``warnings.warn``: a warning points at the user's line, whichever API led there."""
    frame = sys._getframe(2)
    level = 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
            "dist_client."):
        frame = frame.f_back
        level += 1
    return level


__all__ = ["ClientCore"]


if hasattr(os, "register_at_fork"):  # (not on Windows, which has no fork)
    os.register_at_fork(after_in_child=_after_fork_in_child)
