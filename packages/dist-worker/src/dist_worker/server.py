"""The worker's asyncio shell: talks to the center, peers and clients; WorkerState decides."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from functools import partial
from typing import Any

from dist_protocol.addresses import format_address, local_address_towards, parse_address
from dist_protocol.comm import HANDSHAKE_TIMEOUT, Comm, Listener, connect, listen
from dist_protocol.environment import describe, describe_tag, local_environment, pickle_tag
from dist_protocol.errors import (CommClosedError, HandshakeError, InvalidMessage, InvalidPayload,
                                  ProtocolError)
from dist_protocol.framing import DEFAULT_LIMITS, Limits
from dist_protocol.messages import (AcquireReplicas, ActorCall, CloseWorker, ComputeTask, Data,
                                    DataStored, FreeKeys, GetData, Heartbeat, Message, PutData,
                                    RegisterWorker, RestartWorker, StealRequest, Story, TaskErred,
                                    WorkerQuery,
                                    Unregister, WorkerRegistered, downgrade)
from dist_protocol.records import builder
from dist_protocol.scheduler_file import SchedulerFileError, read_scheduler_file
from dist_protocol.serialize import CodeRefused, SerializationError, serialize
from dist_protocol.timeouts import wait_for
from dist_protocol.task_context import TaskContext, WorkerInfo

from .actors import ActorHost
from .events import (ComputesRequested, DataFetched, DataPut, Event, Execute, Fetch, FetchFailed,
                     FreeRequested, InputsUnloadable, ReadSpilled, ReplicasRequested,
                     ReplaceThread, RestartRequested, Resume, SignalReceived, SpilledValueLost,
                     SpilledValueRead, StealRequested, StoryRequested, Terminated)
from .inline_policy import InlinePolicy
from .task_runner import TaskRunner
from .orders import LoopStretch, OrderCarrier
from .memory import MemoryPolicy
from .spill import SpillLoadError, SpillReadError
from .spillwriter import SpillWriter
from .monitor import RESTART_EXIT_CODE, Monitor
from .outage import CenterOutage
from .peers import Peers
from .stallwatch import StallWatch
from .task_signals import KeptHandlers
from .state import INCOMING_SHARE, WorkerState
from .store import DataStore
from . import running_now, unpickling, uploads
from .unpickling import code_from_elsewhere
from .plugins import PluginHost, WorkerPlugins
from .warning_filters import put_back_warning_filters

log = logging.getLogger("dist.worker")

# The events of the center's usual orders, made with one change of class (``builder``).
computes_requested = builder(ComputesRequested)
free_requested = builder(FreeRequested)
PLUGIN_TEARDOWN_TIMEOUT = 10.0  # seconds a closing worker waits for its plugins' teardowns
PICKLE_TAG = pickle_tag()  # "cpython-3.11": pickled code from elsewhere runs only if it matches
_new_tuple = tuple.__new__  # a named tuple made from its fields' tuple (``task_context``)
NO_CENTER_EXIT_CODE = 3  # gave up on reaching the center (--timeout): a nanny stops too
# A put-data of more bytes than this is unpickled on a thread: 1 GiB of bytes moved out of its
# frame held the loop (heartbeats, peers, other clients) for 2.6 s. Smaller ones stay on the
# loop, where a small scatter costs no thread hop.
PUT_ON_THREAD_BYTES = 1 << 20
__all__ = ["NO_CENTER_EXIT_CODE", "RESTART_EXIT_CODE", "Worker"]


def announce(line: str) -> None:
    """Print ``line`` for the operator. A task may have closed this process's stdout (or its
    file descriptor): the line is lost then, not the worker's connection to its center."""
    try:
        print(line, flush=True)
    except (OSError, ValueError):
        log.warning("%s (stdout is closed)", line)


class Worker:
    def __init__(self, center: str, *, host: str | None = None, port: int = 0,
                 nthreads: int | None = None, name: str | None = None, token: str | None = None,
                 ssl_server=None, ssl_client=None, contact_address: str | None = None,
                 heartbeat_interval: float = 0.5, memory_limit: int = 0,
                 resources: dict[str, float] | None = None, reconnect: bool = True,
                 limits: Limits = DEFAULT_LIMITS, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 center_timeout: float | None = None, memory_policy: MemoryPolicy | None = None,
                 local_directory: str | None = None, max_spill: int | None = None,
                 spill_compression: str = "lz4", announce_registration: bool = True,
                 scheduler_file: str | None = None):
        self.center_address = center
        # Where the center says how to reach it: read again before each reconnection, as a
        # center started again may listen elsewhere.
        self.scheduler_file = scheduler_file
        # ``dworker`` prints each registration for the operator; a worker started inside a
        # user's program (a local cluster in one process) stays quiet.
        self.announce_registration = announce_registration
        self.center_timeout = center_timeout  # give up after this long without a center
        self.host = host
        self.port = port
        self.nthreads = nthreads or os.cpu_count() or 1
        self.name = name
        self.token = token
        self.ssl_server, self.ssl_client = ssl_server, ssl_client
        self.limits = limits  # what an authenticated peer (center, worker, client) may send
        self.handshake_timeout = handshake_timeout
        self.contact_address = contact_address
        self.heartbeat_interval = heartbeat_interval
        if memory_policy is None:
            memory_policy = MemoryPolicy(limit=memory_limit)
        self.memory_policy = memory_policy
        self.memory_limit = memory_policy.limit
        self.resources = dict(resources or {})  # abstract amounts tasks may ask for
        self.reconnect = reconnect
        # The values held: in memory up to the target, then on disk (removed at close).
        self.store = DataStore(target=memory_policy.bytes_at("target"),
                               directory=local_directory, max_spill=max_spill,
                               spill_compression=spill_compression,
                               size_hint=lambda key: self.state.nbytes.get(key),
                               writer=SpillWriter())
        self.state = WorkerState(self.nthreads, data=self.store, incoming_bytes_limit=(
            int(memory_policy.limit * INCOMING_SHARE) if memory_policy.limit else None))
        self.address = ""
        self.center: Comm | None = None
        self.registered = asyncio.Event()
        self.closing = False
        self.stopped = asyncio.Event()
        self.refused: HandshakeError | None = None  # why the center turned us away, if it did
        self.gave_up: str | None = None  # why we stopped looking for the center, if we did
        self.registrations = 0
        self.peers = Peers(self._open_peer)
        self._tasks: set[asyncio.Task] = set()
        self._runner: TaskRunner | None = None
        # What the state decides is carried out here, inline tasks run on the loop's thread.
        # No task runs inline while the stall watch could not keep the worker alive towards
        # the center from its own thread (``OrderCarrier.center_unwatched``).
        self._stall_watch = StallWatch(heartbeat_interval, self._beat_while_stalled)
        self._stretch = LoopStretch(InlinePolicy(), self._stall_watch)
        self._orders = OrderCarrier(self.state, self._stretch.policy, self._stretch,
                                    self.send_center, self._dispatch, self.task_context)
        self._listener: Listener | None = None
        self.actors: ActorHost | None = None  # the actors living here (once started)
        self.monitor = Monitor(self)
        self.reading_back = 0  # bytes of spill files being read on threads (peers, tasks...)
        # ... of them, tasks' inputs coming back into memory, room made for them (``monitor``)
        self.reading_inputs = 0
        self.about: WorkerInfo | None = None  # what tasks see of this worker (once started)
        self.plugins = WorkerPlugins()
        self._plugin_host: PluginHost | None = None  # the plugins, as tasks reach them

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        scheme, center_host, center_port = parse_address(self.center_address)
        host = self.host
        if host is None:
            host = ("127.0.0.1" if center_host in ("127.0.0.1", "localhost", "::1")
                    else local_address_towards(center_host))
        self._listener = await listen(format_address(host, self.port, scheme), self._on_comm,
                                      token=self.token, ssl_context=self.ssl_server, who="worker",
                                      limits=self.limits,
                                      handshake_timeout=self.handshake_timeout)
        bound_port = self._listener.port
        if self.contact_address:
            self.address = self.contact_address
        else:
            advertised = host
            if host in ("0.0.0.0", "::", ""):
                advertised = local_address_towards(center_host)
            self.address = format_address(advertised, bound_port, scheme)
        self.state.address = self.address
        self.name = self.name or self.address
        self._set_about()
        loop = self._stretch.loop = asyncio.get_running_loop()
        self._runner = TaskRunner(self.nthreads, loop, self._on_executed, self.handle,
                                  self.task_context, before=self.monitor.task_starting,
                                  after=self.monitor.after_task)
        self.actors = ActorHost(loop, lambda: self.address, self.handle)
        self._spawn(self._center_loop())
        self._spawn(self.monitor.run())
        self._spawn(self.monitor.watch_memory())
        if self.memory_policy.limit:
            self.store.check_directory()  # warns now, not at the first spill, if it is bad

    async def _tear_down_plugins(self) -> None:
        """Run the plugins' teardowns on a thread; a worker that closes does not wait for one
        that hangs longer than ``PLUGIN_TEARDOWN_TIMEOUT``."""
        if self.about is None or not self.plugins.names:
            return
        try:
            await wait_for(asyncio.to_thread(self.plugins.teardown_all, self.about),
                           PLUGIN_TEARDOWN_TIMEOUT)
        except TimeoutError:
            log.warning("the worker plugins' teardown did not finish within %s s",
                        PLUGIN_TEARDOWN_TIMEOUT)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self, reason: str = "closing", unregister: bool = True) -> None:
        """Stop serving; ``unregister``: say goodbye to the center first, so that it does not
        count the tasks running here as killed by this worker's death."""
        if self.closing:
            return
        self.closing = True
        put_back_warning_filters()  # (a task's "error" filter would fail the close itself)
        try:
            center = self.center  # the attribute clears itself if the center goes meanwhile
            if center is not None and not center.is_closed:
                if unregister:
                    center.send(Unregister())
                    await asyncio.sleep(0.05)  # let the goodbye leave before the socket closes
                center.close(reason)
        except CommClosedError:
            pass
        finally:
            await self._tear_down_plugins()
            if self._listener is not None:
                self._listener.close()
            self.peers.close()
            current = asyncio.current_task()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
            self._stall_watch.close()
            if self._runner is not None:
                self._runner.close()
            if self.actors is not None:
                self.actors.close()
            self.store.close()
            self.stopped.set()

    # -- the center -------------------------------------------------------------------------
    async def _center_loop(self) -> None:
        """Stay registered: connect, register (with the keys held), and reconnect when lost.

        An operator must see why a worker is idle: the first failure to reach the center is a
        warning naming the address and the error, and so is every ``CENTER_WARN_EVERY``
        seconds of failing after it. With ``center_timeout``, a worker without a center for
        that long gives up (``gave_up`` says why)."""
        delay = 0.1
        first = True
        outage = CenterOutage(self.center_address, self.center_timeout)
        while not self.closing:
            try:
                if self.scheduler_file is not None:
                    await self._follow_scheduler_file()
                comm = await connect(self.center_address, role="worker", token=self.token,
                                     name=self.name, ssl_context=self.ssl_client,
                                     limits=self.limits, timeout=self.handshake_timeout)
            except HandshakeError as exc:
                if exc.code == "handshake-timeout":  # a busy center, not a refusal
                    outage.failed(f"no handshake: {exc}")
                else:
                    log.error("the center refused us: %s", exc)
                    if first:  # a wrong token or version: waiting cannot fix it, so stop
                        self.refused = exc
                        break
                    outage.failed(f"refused: {exc}")
            except SchedulerFileError as exc:
                outage.failed(str(exc))
            except (OSError, TimeoutError) as exc:
                if first and not self.reconnect:
                    raise
                outage.failed(f"{type(exc).__name__}: {exc}" if isinstance(exc, TimeoutError)
                              else str(exc) or type(exc).__name__)
            else:
                delay = 0.1
                registered = await self._serve_center(comm)
                first = first and not registered
                if registered:  # the outage after this one starts now
                    outage = CenterOutage(self.center_address, self.center_timeout)
                else:
                    outage.failed("connected, but the center did not accept the registration")
                if not self.reconnect:
                    break
            if self.closing:
                break
            if outage.expired():
                self.gave_up = outage.give_up_message()
                break
            await asyncio.sleep(min(delay, outage.remaining()))
            delay = min(delay * 2, 2.0)
        reason = ("refused by the center" if self.refused else
                  "no center" if self.gave_up else "center gone")
        await self.close(reason)

    async def _follow_scheduler_file(self) -> None:
        """Take the center's address from the scheduler file, if it has changed."""
        assert self.scheduler_file is not None
        try:
            identity = await asyncio.to_thread(read_scheduler_file, self.scheduler_file)
        except FileNotFoundError:
            raise SchedulerFileError(f"no scheduler file at {self.scheduler_file} (yet)") from None
        address = identity["address"]
        if address != self.center_address:
            log.warning("the scheduler file %s now gives the center at %s (was %s)",
                        self.scheduler_file, address, self.center_address)
            self.center_address = address

    async def _serve_center(self, comm: Comm) -> bool:
        """Register over ``comm`` and serve the center until it goes; whether we registered."""
        comm.send(RegisterWorker(address=self.address, nthreads=self.nthreads, name=self.name,
                                 memory_limit=self.memory_limit, keys=dict(self.state.nbytes),
                                 resources=self.resources,
                                 nanny=(self.monitor.nanny_id
                                        if "restart-workers" in comm.features else None)))
        try:
            reply = await wait_for(comm.recv(), 10)
        except (CommClosedError, TimeoutError):
            return False
        if not isinstance(reply, WorkerRegistered):
            comm.close("expected worker-registered")
            return False
        self.center = comm  # (heartbeats go out meanwhile; the center's orders wait)
        comm.write_from_threads()  # the stall watch's heartbeats
        self._orders.center_unwatched = not comm.thread_writes.enabled
        if reply.uploads:
            # Before any task, which may import them: in a thread, as they may take a while.
            installed = await asyncio.to_thread(uploads.install_all, reply.uploads)
            if installed:
                log.info("installed the uploaded files %s", ", ".join(installed))
        if reply.plugins and self.about is not None:
            # After the uploads, which a plugin may import; before any task, on a thread.
            await asyncio.to_thread(self.plugins.add_kept, reply.plugins, self.about)
        comm.set_handler(self._on_center_messages)
        # On every registration, not only the first: operators grep for this line.
        if self.announce_registration:
            announce(f"Registered with center at: {self.center_address}")
        self.registrations += 1
        if self.registrations > 1:
            log.info("re-registered with the center at %s", self.center_address)
        self.registered.set()
        # Shielded: a close cancelling this coroutine must not cancel the comm's own future,
        # which the comm then takes as closed already and skips its clean-up (the duplicate
        # descriptor of the thread writes would hold the socket open).
        await asyncio.shield(comm.closed)
        self.center = None
        self._orders.center_unwatched = False
        self.registered.clear()
        if not self.closing:
            reason = comm.close_reason or ("the connection closed without a reason: the center "
                                           "stopped, or the network between us failed")
            log.warning("lost the center at %s: %s; reconnecting", self.center_address, reason)
        return True

    def _on_center_messages(self, messages: list[Message]) -> None:
        events: list[Any] = []
        computes: list[ComputeTask] = []  # in a row: one event, one stimulus for them all
        for msg in messages:
            if isinstance(msg, ComputeTask):
                if msg.pickled_with is not None and msg.pickled_with != PICKLE_TAG:
                    self._refuse_foreign_pickle(msg)
                    continue
                computes.append(msg)
                continue
            if computes:
                events.append(computes_requested(computes))
                computes = []
            if isinstance(msg, FreeKeys):
                events.append(free_requested(msg.keys))
                if self.actors is not None:
                    self.actors.free(msg.keys)
            elif isinstance(msg, StealRequest):
                events.append(StealRequested(msg.keys))
            elif isinstance(msg, AcquireReplicas):
                events.append(ReplicasRequested(msg.who_has))
            elif isinstance(msg, Story):
                events.append(StoryRequested(msg.id, msg.keys))
            elif isinstance(msg, WorkerQuery):
                self.send_center(running_now.answer(msg, self.address, self.state.executing
                                                    | self.state.seceded))
            elif isinstance(msg, RestartWorker):
                self._restart(msg.reason)
                return
            elif isinstance(msg, CloseWorker):  # retired: everything it held is elsewhere
                log.info("closing: %s", msg.reason)
                self._spawn(self.close(msg.reason))
                return
        if computes:
            events.append(computes_requested(computes))
        if events:
            self.handle(*events)

    def _refuse_foreign_pickle(self, msg: ComputeTask) -> None:
        """Code pickled by another Python minor version can crash this process or compute a
        wrong result when unpickled: the task errs instead, before anything is unpickled."""
        text = (f"task {msg.key} was pickled by {describe_tag(msg.pickled_with or '?')} and this "
                f"worker ({self.address}) runs {describe(local_environment())}: pickled "
                f"functions and arguments only run on workers of the same Python minor version "
                f"(install the client's Python on the workers, or the workers' on the client)")
        log.warning("%s", text)
        if self.center is not None and not self.center.is_closed:
            self.center.send(TaskErred(key=msg.key, exception_type="EnvironmentMismatch",
                                       message=text))

    def _restart(self, reason: str) -> None:
        """Under a nanny: exit so it starts a fresh process. Alone: drop everything and
        register again as a new, empty worker."""
        log.warning("restarting: %s", reason)
        if self.monitor.under_nanny:
            self.closing = True  # this process is about to exit: no reconnection, no tasks
            if self.center is not None:
                self.center.close("restarting")
            self._spawn(self._exit_for_restart())
            return
        if self._runner is not None:
            self._runner.forget_runs()  # (before the state forgets: see task_runner)
        self.handle(RestartRequested(reason))
        self._set_about()  # what tasks kept here goes, as with a new process
        if self.actors is not None:
            self.actors.close()
        if self.center is not None:
            self.center.close("restarting")

    async def _exit_for_restart(self) -> None:
        """End this process for the nanny to start a fresh one, the plugins torn down first,
        as on a close (a restart the memory monitor orders does not wait for them)."""
        try:
            await self._tear_down_plugins()
        finally:
            self.store.close()  # os._exit runs no clean-up: remove the spill files first
            os._exit(RESTART_EXIT_CODE)

    def handle(self, *events: Event) -> None:
        """Tell the state what happened, and carry out what it decides."""
        self._orders.act(self.state.handle(*events))
        self.store.hand_off_dropped()

    @property
    def paused(self) -> bool:
        return self.state.paused

    def send_center(self, *messages: Message) -> None:
        center = self.center
        if center is not None and not center.is_closed:
            # An optional op the center did not announce (an older center) is not sent.
            features = center.features
            center.send(*[downgrade(m, features) if m.gated_fields else m
                          for m in messages if m.feature is None or m.feature in features])

    def task_context(self, key: str, on_loop: bool = False) -> TaskContext:
        """What the task ``key`` may know of this worker (see ``dist_protocol.task_context``)."""
        assert self._runner is not None
        # (made for every task: from a tuple of its fields by the tuple's own constructor, as
        # ``_make`` does, but without ``_make``'s Python call; by keyword it cost twice as
        # much again)
        return _new_tuple(TaskContext, (key, self.address, self.center_address, self.token,
                                        self.ssl_client, self._runner, on_loop, self.about,
                                        self._plugin_host))

    def _set_about(self) -> None:
        """A new view of this worker for tasks (at start and at each restart: a new id)."""
        self.about = WorkerInfo(address=self.address, name=str(self.name),
                                id=f"worker-{os.urandom(16).hex()}", nthreads=self.nthreads,
                                memory_limit=self.memory_limit or None,
                                local_directory=self.store.directory,
                                center_address=self.center_address)
        self._plugin_host = PluginHost(self.plugins, self.about)

    def flush_center(self) -> None:
        center = self.center
        if center is not None and not center.is_closed:
            center.flush()

    # -- carrying out the state's orders -----------------------------------------------------
    def _dispatch(self, ins: Any) -> None:
        """An order that does not run on the loop (``OrderCarrier``): its I/O."""
        kind = type(ins)
        if kind is Execute and ins.actor and self.actors is not None:
            self.flush_center()
            self.actors.create(ins)
        elif kind is Execute:
            # Should this task kill the process, the center must already know which tasks
            # finished, or it blames them for the death instead of this one.
            self.flush_center()
            self.monitor.make_room(ins.key, ins.inputs)
            assert self._runner is not None  # started before any task arrives
            self._runner.submit(ins)
        elif kind is Fetch:
            self._spawn(self._fetch(ins))
        elif kind is ReadSpilled:
            self._spawn(self._read_spilled(ins))
        elif kind is Resume:
            assert self._runner is not None
            self._runner.resume(ins.key)
        elif kind is ReplaceThread:
            assert self._runner is not None
            self._runner.replace_thread(ins.key)

    def keep_signal_handlers(self, numbers: list[int]) -> None:
        """Put back the handlers ``numbers`` have now whenever an inline task replaced one."""
        self._stretch.signal_handlers = KeptHandlers(numbers)

    def _beat_while_stalled(self, key: str, looks: int) -> None:
        """On the stall watch's thread: task ``key`` has kept the event loop's thread for
        ``looks`` heartbeat intervals. A heartbeat keeps the center from taking the worker for
        dead (its results and tasks would be lost with it)."""
        if looks == 1:
            log.warning("task %s has run on the event loop for over %.1f s: heartbeats go on, "
                        "but peers and clients wait for it; its function goes back to the "
                        "thread pool", key, self.heartbeat_interval)
        center = self.center
        if center is not None:
            metrics = dict(self.monitor.last_metrics, time=time.time())
            # What the loop queued before the task began goes first, in order.
            if not center.write_now(Heartbeat(metrics=metrics), queued_first=True):
                log.debug("no heartbeat during inline task %s: the connection is busy", key)

    def _on_executed(self, outcomes: list) -> None:
        self._orders.pool_ran(outcomes)
        self.handle(*outcomes)

    async def _fetch(self, order: Fetch) -> None:
        try:
            start = time.time()
            reply = await self.request(order.worker, GetData(id=0, keys=order.keys))
            stop = time.time()
            values, nbytes, unloadable = {}, {}, {}
            made_by = self.peers.environment_of(order.worker)
            same_python = made_by is None or pickle_tag(made_by) == PICKLE_TAG
            for key, payload in reply.data.items():
                size = payload.nbytes  # (before its frames are moved into the value)
                try:
                    values[key] = unpickling.unpickle_received(payload, code=same_python)
                except CodeRefused:
                    unloadable[key] = ("EnvironmentMismatch", code_from_elsewhere(made_by))
                    continue
                except SerializationError as exc:  # the value's own pickle, from any holder
                    cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc
                    unloadable[key] = (type(cause).__name__, str(exc))
                    continue
                nbytes[key] = size
            # A key the peer could not serialize is as good as missing: try elsewhere.
            events: list[Event] = [DataFetched(order.worker, values, nbytes,
                                               [*reply.missing, *reply.errors],
                                               start=start, stop=stop)]
            if unloadable:
                events.append(InputsUnloadable(order.worker, unloadable))
        except (OSError, ProtocolError, CommClosedError, TimeoutError) as exc:
            events = [FetchFailed(order.worker, order.keys, f"{type(exc).__name__}: {exc}")]
        self.handle(*events)

    async def request(self, address: str, message: Message, timeout: float = 300) -> Any:
        """Send a request with an ``id`` to a peer and wait for its reply."""
        return await self.peers.request(address, message, timeout)

    async def _open_peer(self, address: str) -> Comm:
        return await connect(address, role="peer", token=self.token, name=self.address,
                             ssl_context=self.ssl_client, limits=self.limits,
                             timeout=self.handshake_timeout)

    # -- serving clients and peers -----------------------------------------------------------
    def _on_comm(self, comm: Comm) -> None:
        if comm.peer_role not in ("client", "peer"):
            comm.abort(InvalidMessage(f"a worker serves clients and peers, not {comm.peer_role}s"))
            return
        comm.set_handler(lambda messages: self._on_data_requests(comm, messages))

    def _on_data_requests(self, comm: Comm, messages: list[Message]) -> None:
        for msg in messages:
            if isinstance(msg, GetData):
                large = (self.store.large_on_disk(msg.keys)
                         if (msg.serializers or ["pickle"])[0] == "pickle" else None)
                if large:
                    self._spawn(self._serve_read_back(comm, msg, large))
                else:
                    comm.send(self._get_data(msg))
            elif isinstance(msg, PutData):
                self._check_pickle_tag(comm, msg)
                # (sizes before the frames are moved into the values)
                nbytes = {key: payload.nbytes for key, payload in msg.data.items()}
                if sum(nbytes.values()) > PUT_ON_THREAD_BYTES:
                    self._spawn(self._put_large_data(comm, msg, nbytes))
                else:
                    comm.send(self._put_data(msg, nbytes))
            elif isinstance(msg, ActorCall) and self.actors is not None:
                self.actors.call(comm, msg)
            else:
                raise InvalidMessage(f"op {msg.op!r} is not served by a worker")

    async def _serve_read_back(self, comm: Comm, msg: GetData, large: list[str]) -> None:
        """Answer ``msg``, the files of its ``large`` values read on a thread: read on the
        loop, a value of hundreds of megabytes held it (heartbeats, every peer) for seconds.
        What changed meanwhile is judged on the loop again, in ``_get_data``: a key freed is
        missing, a file that could not be read is tried once more there."""
        loop = asyncio.get_running_loop()
        read = {}
        for key in large:
            weight = self.store.weights.get(key, 0)
            self.reading_back += weight
            try:
                read[key] = await loop.run_in_executor(None, self.store.read_payload, key)
            except (OSError, KeyError):
                continue  # (judged again on the loop)
            finally:
                self.reading_back -= weight
        if not comm.is_closed:
            comm.send(self._get_data(msg, read))

    async def _read_spilled(self, order: ReadSpilled) -> None:
        """Read tasks' large spilled inputs back on a thread, one at a time, each told to the
        state as it ends (the tasks wait ``reading``): read on the loop, a value of hundreds
        of megabytes held it (heartbeats, peers, clients) for seconds. Room is made for each
        first, the values leaving written on the writer's thread, and the read begins once
        they have left memory."""
        loop = asyncio.get_running_loop()
        store = self.store
        for key in order.keys:
            room: asyncio.Future[None] = loop.create_future()
            store.make_room_for(key, partial(_settle, room))
            await room
            weight = store.weights.get(key, 0)
            self.reading_back += weight
            self.reading_inputs += weight
            try:
                value, size = await loop.run_in_executor(None, store.read_value, key)
                event = SpilledValueRead(key, value, size, read=True)
            except KeyError:
                event = SpilledValueRead(key)  # not on disk any more: in memory, or freed
            except SpillReadError as exc:
                log.warning("%s: lost here, it comes from another holder or is computed "
                            "again", exc.strerror)
                event = SpilledValueRead(key, lost=str(exc))
            except Exception as exc:  # noqa: BLE001 -- its task errs, saying why
                cause = exc.cause if isinstance(exc, SpillLoadError) else exc
                log.warning("the spilled value of %s cannot be loaded: %s: %s", key,
                            type(cause).__name__, cause)
                event = SpilledValueRead(key, unloadable=(type(cause).__name__, str(cause)))
            finally:
                self.reading_back -= weight
                self.reading_inputs -= weight
            self.handle(event)

    def _get_data(self, msg: GetData, read: dict[str, Any] | None = None) -> Data:
        serializers = msg.serializers or ["pickle"]
        data, missing, errors = {}, [], {}
        state = self.state
        for key in msg.keys:
            if key not in state.data:
                missing.append(key)
                continue
            try:
                payload = None
                if serializers[0] == "pickle":
                    # Spilled values are sent as their file holds them, never unpickled here.
                    payload = (state.serialized.get(key)
                               or self.store.payload(key, read.get(key) if read else None))
                if payload is None:
                    payload = serialize(state.data[key], serializers)
            except SpillReadError as exc:
                # Gone from this worker: the center is told, and computes it again.
                self.handle(SpilledValueLost(key, str(exc)))
                missing.append(key)
                continue
            except (SerializationError, SpillLoadError, OSError) as exc:
                errors[key] = f"{type(exc).__name__}: {exc}"
                continue
            data[key] = payload
        return Data(id=msg.id, data=data, missing=missing, errors=errors)

    @staticmethod
    def _check_pickle_tag(comm: Comm, msg: PutData) -> None:
        """Pickles from a peer on another Python minor version are refused unread."""
        peer = comm.peer_environment
        if peer is None or pickle_tag(peer) == PICKLE_TAG:
            return
        if any(payload.serializer == "pickle" for payload in msg.data.values()):
            raise InvalidMessage(f"put-data holds pickles made by {describe(peer)}, and this "
                                 f"worker runs {describe(local_environment())}: they are not "
                                 f"unpickled here", InvalidPayload.code)

    def _put_data(self, msg: PutData, nbytes: dict[str, int]) -> DataStored:
        values = unpickling.unpickle_put(msg)
        self.handle(DataPut(values, nbytes))
        return DataStored(id=msg.id, keys=list(values))

    async def _put_large_data(self, comm: Comm, msg: PutData, nbytes: dict[str, int]) -> None:
        """``_put_data`` with the values unpickled on a thread; the store learns of them on
        the loop once they all are, as of a small put's, and the client is answered then."""
        try:
            values = await asyncio.get_running_loop().run_in_executor(
                None, unpickling.unpickle_put, msg)
        except InvalidPayload as exc:
            comm.abort(exc)
            return
        except Exception as exc:  # a bug of ours: it costs this connection only
            log.exception("internal error putting data from %s", comm.peer_address)
            comm.abort(ProtocolError(f"internal error: {type(exc).__name__}: {exc}",
                                     "internal-error"))
            return
        if self.closing:
            return
        self.handle(DataPut(values, nbytes))
        if not comm.is_closed:
            comm.send(DataStored(id=msg.id, keys=list(values)))

    def survived_signal(self, name: str) -> None:
        """The process got ``name``, which would have ended it (``task_signals``)."""
        state = self.state
        running = sorted(state.executing | state.seceded)
        last = state.last_ended()
        self.handle(SignalReceived(name))
        log.warning("got %s, which would have ended this worker process: ignored (a task's "
                    "alarm, timer or os.kill?). Running then: %s; the last task to end: %s",
                    name, ", ".join(running) or "none", last[0] if last else "none")

    def terminated(self, at: float, nanny_gone: bool = False) -> None:
        """The process got a SIGTERM its nanny did not send (without a nanny: one this process
        or a process it started sent) at ``at`` (``time.time()``; ``cli.serve``), and is about
        to close without unregistering: the center hears first
        which tasks may have sent it. ``nanny_gone``: it was the parent-death signal of a
        nanny that was killed (by an operator, or by a task: they stay suspects)."""
        if self.closing:
            return
        self.handle(Terminated(at=at, within=self.heartbeat_interval))
        self.flush_center()
        if nanny_gone:
            log.warning("the nanny (this process's parent) ended without stopping this worker "
                        "(killed?): stopping as if killed")
        else:
            log.warning("got SIGTERM, not from the nanny or (without one) an operator: stopping "
                        "as if killed (a task's os.kill?)")

    # -- metrics ------------------------------------------------------------------------------
    def metrics(self) -> dict:
        state = self.state
        waiting, ahead = state.waiting_counts()
        return {"executing": len(state.executing), "seceded": len(state.seceded),
                "ready": len(state.ready), "waiting": waiting, "ahead": ahead,
                "keys": len(state.data), "nbytes": state.total_nbytes,
                "in_flight": len(state.fetches.in_flight), "paused": state.paused,
                "time": time.time(),
                "spill_reading": self.reading_back,
                **({"signals": dict(state.signals)} if state.signals else {})}


def _settle(future: asyncio.Future[None]) -> None:
    """``future`` is done now, unless it was already (cancelled with its waiter)."""
    if not future.done():
        future.set_result(None)
