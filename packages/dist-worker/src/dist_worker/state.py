"""WorkerState: a worker's task decisions as a plain class -- events in, instructions out.

A task arrives with ``compute-task`` and waits for its inputs (``waiting``), which are fetched
from the peers that hold them, several keys per request; then it is ``ready``, ``executing`` on
one of ``nthreads`` threads, and finally in ``memory`` (or reported as erred and forgotten).
A ready task whose inputs include large values spilled to disk takes its slot and is
``reading`` first: their files are read on a thread (``ReadSpilled``), and it runs once the
last read has ended (``SpilledValueRead``), as a waiting task runs once its fetches have.
A running task that waits on tasks it submitted may give its slot back (``long-running``,
after ``secede``): another task runs in its place, and it takes a slot back (``rejoin``)
before it goes on, waiting for one to be free.
Values held here are opaque to this class. No I/O; the clock is read once per step, for the
log of ``(key, start, finish, stimulus_id, time)`` that a key's story reads. Memory pressure,
a restart and a story request arrive as events like everything else.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

from dist_protocol.key_names import shown_key
from dist_protocol.records import builder
from dist_protocol.messages import (ComputeTask, KeysAdded, MissingData, StealReply, StoryReply,
                                    TaskErred, TaskFinished, TaskSeceded, Transfer,
                                    WorkerTerminated)

from .events import (STIMULUS_PREFIX, ComputeRequested, ComputesRequested, DataFetched,
                     DataPut, Event, Execute, ExecutionFailed,
                     ExecutionSucceeded, FetchFailed, ForgottenRunEnded, ForgottenRunSeceded,
                     FreeRequested, InlineRunEnded,
                     InputsUnloadable, Instruction, RunInline,
                     MemoryPressureChanged, ReadSpilled, RejoinRequested, ReplicasRequested,
                     ReplaceThread, RestartRequested, Resume, Seceded, SendToCenter,
                     SMALL_VALUE_BYTES, SignalReceived, SpilledValueLost, SpilledValueRead,
                     StealRequested, StoryRequested, Terminated)
from .fetches import REPLICA, Fetches
from . import invariants, tasklog
from .readers import UpcomingReads
from .tasklog import RUNNING, Entry
from .readyqueue import ReadyQueue
from .store_hooks import StoreHooks
from .spill import SpillLoadError, SpillReadError

# Made once a task: built changing their class once, not twice (``records.builder``).
execute = builder(Execute)
task_finished = builder(TaskFinished)

# Inputs in flight from all peers together add up to at most this share of the memory limit
# (or are one key), as dask's ``transfer_incoming_bytes_limit``: each arrives and is unpickled
# in memory that no target accounts for until it is stored.
INCOMING_SHARE = 0.1
LOG_LENGTH = 10_000  # recent (key, start, finish, stimulus_id, time), for stories
# Results this small (pickled) travel with task-finished, so a waiting client need not fetch them.
# Taken from a ready task's priority for the order its inputs spill in: ahead of any waiting's.
READ_WHEN_READY = 1 << 64


class WorkerTask:
    __slots__ = ("key", "message", "state", "waiting_on", "priority", "transfers", "read_back")

    def __init__(self, key: str, message, seq: int):
        self.key = key
        self.message = message
        self.state = "released"  # until it is waiting or ready
        self.waiting_on: set[str] = set()
        self.priority = (-message.priority, seq)
        self.transfers: list[Transfer] | None = None  # its inputs fetched from peers
        # Its inputs read back from disk on a thread while it was ``reading``, by key: held
        # until it runs, so that none goes back to disk in between.
        self.read_back: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<WorkerTask {self.key} {self.state}>"


class WorkerState:
    def __init__(self, nthreads: int, address: str = "",
                 data: MutableMapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.time,
                 incoming_bytes_limit: int | None = None):
        self.nthreads = nthreads
        self.address = address
        # The values held: a dict, or the worker's store that spills to disk (``nbytes`` is
        # set before ``data`` so that a store can use it as the size of unknown types).
        self.data: MutableMapping[str, Any] = {} if data is None else data
        self.nbytes: dict[str, int] = {}
        # key -> Payload, when cheap to keep; a store that spills holds them, to drop the
        # pickle of each value it spills.
        cache = getattr(self.data, "serialized", None)
        self.serialized: dict[str, Any] = cache if isinstance(cache, dict) else {}
        # What a store that spills is asked (a plain dict: stand-ins), bound here: several
        # are asked on a task's path.
        store = StoreHooks(self.data)
        # When each input will next be read by a task here, followed only while the store
        # watches (near spilling, ``store``): ``_watching``.
        self.reads = UpcomingReads(store.plan_use)
        self.tasks: dict[str, WorkerTask] = {}
        # Which ready task runs next: by priority, those with inputs all in memory first on a
        # store that spills (``readyqueue``), once it watches.
        self._any_on_disk = store.any_on_disk
        self._on_disk = store.on_disk
        self._large_on_disk = store.large_on_disk  # read back on a thread
        self._restore = store.restore  # how a value read so comes back into the store
        self._weighed = store.weighed  # what a result weighs, said before it is stored
        self.ready: ReadyQueue[WorkerTask] = ReadyQueue()
        self._watching = False
        if store.watches:
            setattr(self.data, "on_watch", self._watch)  # noqa: B010 (a store, not any mapping)
            if getattr(self.data, "watching", False):
                self._watch(True)
        self.executing: set[str] = set()  # running, each on one of the nthreads slots
        # ... or ``reading``: holding a slot while inputs are read back on a thread. The keys
        # being read back, each with the tasks waiting for it (``ReadSpilled``).
        self.loading: dict[str, set[str]] = {}
        # ... or lent to a run on the event loop (``RunInline``), which takes no slot.
        self.lent: set[str] = set()
        self.seceded: set[str] = set()  # running, having given their slot back
        self.rejoining: deque[str] = deque()  # seceded, waiting for a slot to go on
        # Slots held by runs a restart forgot (``ForgottenRunEnded``): their threads are busy
        # still, but belong to no task, and the key may run again meanwhile.
        self.forgotten_slots = 0
        # The inputs fetched from peers: who waits for each, who holds it, what is in flight.
        self.fetches = Fetches(incoming_bytes_limit, self._log)
        self.signals: dict[str, int] = {}  # signal name -> times survived (SignalReceived)
        self.paused = False
        self.above_target = False  # process memory above the target: one input at a time
        self.log: deque[Entry] = deque(maxlen=LOG_LENGTH)
        self.clock = clock
        self._now = 0.0
        self._stimulus_id = ""
        self._stimuli = itertools.count(1)
        self._seq = itertools.count()
        self._out: list[Instruction] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            ComputeRequested: self._compute, ComputesRequested: self._computes,
            FreeRequested: self._free,
            DataFetched: self._fetched, FetchFailed: self._fetch_failed,
            InputsUnloadable: self._unloadable,
            ExecutionSucceeded: self._succeeded, ExecutionFailed: self._failed,
            ForgottenRunEnded: self._forgotten_run_ended,
            ForgottenRunSeceded: self._forgotten_run_seceded,
            InlineRunEnded: self._inline_run_ended,
            DataPut: self._put, ReplicasRequested: self._replicas,
            StealRequested: self._steal, MemoryPressureChanged: self._memory_pressure,
            RestartRequested: self._restart, StoryRequested: self._story,
            Seceded: self._seceded, RejoinRequested: self._rejoin,
            SpilledValueLost: self._spilled_value_lost, SpilledValueRead: self._spilled_read,
            SignalReceived: self._signalled, Terminated: self._terminated,
        }

    @property
    def total_nbytes(self) -> int:
        return sum(self.nbytes.values())

    def handle(self, *events: Event) -> list[Instruction]:
        self._now = self.clock()
        for event in events:
            kind = type(event)
            self._stimulus_id = event.stimulus_id or STIMULUS_PREFIX[kind] + str(
                next(self._stimuli))
            self._handlers[kind](event)
        self._start_ready()
        out, self._out = self._out, []
        return out

    def _log(self, key: str, start: str, finish: str) -> None:
        self.log.append((key, start, finish, self._stimulus_id, self._now))

    def _set_state(self, ts: WorkerTask, state: str) -> None:
        # (``_log`` written out: three or four times per task)
        self.log.append((ts.key, ts.state, state, self._stimulus_id, self._now))
        ts.state = state

    def waiting_counts(self) -> tuple[int, int]:
        """Tasks waiting for inputs: those that wait for a fetch, and those sent ahead that
        wait only for inputs being computed here (``compute-task.ahead``)."""
        waiting = ahead = 0
        for ts in self.tasks.values():
            if ts.state == "waiting":
                computed_here = ts.message.ahead
                if computed_here and all(dep in computed_here for dep in ts.waiting_on):
                    ahead += 1
                else:
                    waiting += 1
        return waiting, ahead

    def story(self, *keys: str) -> list[Entry]:
        return tasklog.story(self.log, set(keys))

    # -- events -------------------------------------------------------------------------------
    def _compute(self, event: ComputeRequested) -> None:
        self._compute_task(event.message)

    def _computes(self, event: ComputesRequested) -> None:
        """A row of compute-task: each as ``_compute``, one stimulus for the row (not an
        event, a stimulus id and a dispatch a task of a map)."""
        compute = self._compute_task
        for msg in event.messages:
            compute(msg)

    def _compute_task(self, msg: ComputeTask) -> None:
        key = msg.key
        if key in self.nbytes:  # (held: ``nbytes`` has the keys of ``data``, without a call)
            self._out.append(SendToCenter(TaskFinished(key=key, nbytes=self.nbytes[key])))
            return
        ts = self.tasks.get(key)
        if ts is not None and ts.state in ("ready", "reading", *RUNNING):
            return
        if ts is None:
            ts = self.tasks[key] = WorkerTask(key, msg, next(self._seq))
        else:
            ts.message = msg  # a resend carries fresher who_has
        # (the comprehensions of this and ``_start_ready`` only for a task with inputs: each is
        # a call of its own, and most tasks of a map have none)
        missing = [dep for dep in msg.who_has if dep not in self.data] if msg.who_has else None
        if missing:
            if self._watching:
                self.reads.add(key, ts.priority, msg.who_has)  # (again: nothing changes)
            self._wait_for(ts, missing)
        else:
            self._make_ready(ts)

    def _wait_for(self, ts: WorkerTask, missing: list[str]) -> None:
        """``ts`` needs these inputs from peers: fetch them (in the order the task names them,
        so what is asked of whom does not depend on set order). Inputs the center names as
        ``ahead`` are being computed here: the task waits for them and nothing is fetched (it
        becomes ready when the last one finishes here; if one fails or is taken away, the
        center frees the task)."""
        self._set_state(ts, "waiting")
        ts.waiting_on = set(missing)
        ahead = ts.message.ahead or ()
        for dep in missing:
            holders = [] if dep in ahead else list(ts.message.who_has[dep])
            if self.address in holders:
                # The center believes this worker holds it; it does not (any more).
                holders.remove(self.address)
                self._out.append(SendToCenter(MissingData(key=dep, worker=self.address)))
            self.fetches.want(dep, ts.key, holders, ts.message.nbytes.get(dep, 0))
        self._fetch_missing(missing)

    def _replicas(self, event: ReplicasRequested) -> None:
        wanted = [key for key in event.who_has if key not in self.data]
        for key in wanted:
            self.fetches.want_replica(key, list(event.who_has[key]))
        self._fetch_missing(wanted)

    def _make_ready(self, ts: WorkerTask) -> None:
        # (``_set_state`` written out here, in ``_start_ready`` and in ``_succeeded``: once
        # each per task)
        self.log.append((ts.key, ts.state, "ready", self._stimulus_id, self._now))
        ts.state = "ready"
        self.ready.push(ts)
        # (a task without inputs reads nothing: no call, as most of a map)
        if ts.message.who_has and self._watching:
            # A ready task reads its inputs before any task still waiting reads its own (and
            # those with inputs all in memory run first): its inputs are the last to spill.
            priority, seq = ts.priority
            self.reads.plan(ts.key, (priority - READ_WHEN_READY, seq), ts.message.who_has)

    def _free(self, event: FreeRequested) -> None:
        waiters, data = self.fetches.waiters, self.data
        replaced = False
        for key in event.keys:
            ts = self.tasks.get(key)
            if ts is not None and ts.state not in RUNNING:
                self._drop_task(ts)
            elif ts is not None and ts.state == "executing" and key not in self.lent:
                self._replace_thread(ts)
                replaced = True
            waiting = waiters.get(key)
            if waiting:
                waiting.discard(REPLICA)
                if waiting:
                    continue
            if waiting is not None:
                del waiters[key]
            if key in self.nbytes:  # (every key in ``data`` is, and the test costs no call)
                self.log.append((key, "memory", "forgotten", self._stimulus_id, self._now))
                data.pop(key, None)
                del self.nbytes[key]
            self.serialized.pop(key, None)
        if replaced:
            self._start_ready()

    def _replace_thread(self, ts: WorkerTask) -> None:
        """A task freed while it runs on a pool thread gives its slot back, as a seceded one
        does: the center counts the slot free once it forgets the task, and a task that never
        ends (a loop, a wait for ever) held it, the tasks queued behind it waiting for good.
        Its thread runs on, outside the pool's count; its result is dropped if it ends."""
        self.executing.discard(ts.key)
        self.seceded.add(ts.key)
        self._set_state(ts, "long-running")
        self._out.append(ReplaceThread(ts.key))

    def _steal(self, event: StealRequested) -> None:
        """Give up the tasks that have not started; the center runs them elsewhere. A task
        that came in the same batch and has a free thread starts first: it was not waiting
        for one (so ``shutdown(cancel_futures=True)`` right after a submit lets the tasks a
        thread was free for run, as a thread pool's would)."""
        self._start_ready()
        given, kept = [], []
        for key in event.keys:
            ts = self.tasks.get(key)
            if ts is not None and ts.state in ("waiting", "ready"):
                self._drop_task(ts)
                given.append(key)
            else:
                kept.append(key)
        self._out.append(SendToCenter(StealReply(keys=given, kept=kept)))

    def _drop_task(self, ts: WorkerTask, finish: str = "forgotten") -> None:
        if ts.state == "reading":
            self._give_slot_back(ts)
        del self.tasks[ts.key]
        self.ready.discard(ts)
        self.reads.remove(ts.key, ts.message.who_has)
        for dep in ts.waiting_on:
            self.fetches.unwait(dep, ts.key)
        self._set_state(ts, finish)

    def _fetched(self, event: DataFetched) -> None:
        fetches = self.fetches
        fetches.answered(event.worker)
        added = {}
        # one request, one transfer for a task, however many of its inputs it brought
        transfer = Transfer(event.worker, event.start, event.stop) if event.stop else None
        for key, value in event.data.items():
            if not fetches.received(key, event.worker):
                continue  # nobody waits for it any more
            self._log(key, "flight", "memory")
            self.nbytes[key] = event.nbytes.get(key, 0)
            self.data[key] = value
            added[key] = self.nbytes[key]
            if transfer is not None:
                self._note_transfer(key, transfer)
            self._input_arrived(key)
        if added:
            self._out.append(SendToCenter(KeysAdded(keys=added)))
        if event.missing:
            self._not_fetched(event.worker, event.missing)
        else:
            self._fetch_missing(list(fetches.waiters))

    def _note_transfer(self, key: str, transfer: Transfer) -> None:
        for task_key in self.fetches.waiters[key]:
            ts = self.tasks.get(task_key)
            if ts is not None:
                if ts.transfers is None:
                    ts.transfers = [transfer]
                elif ts.transfers[-1] is not transfer:
                    ts.transfers.append(transfer)

    def _input_arrived(self, key: str) -> None:
        for task_key in self.fetches.arrived(key):
            if task_key == REPLICA:
                continue
            ts = self.tasks.get(task_key)
            if ts is None:
                continue
            ts.waiting_on.discard(key)
            if not ts.waiting_on and ts.state == "waiting":
                self._make_ready(ts)

    def _fetch_failed(self, event: FetchFailed) -> None:
        self.fetches.answered(event.worker)
        self._not_fetched(event.worker, event.keys)

    def _not_fetched(self, peer: str, keys: list[str]) -> None:
        """``peer`` could not give ``keys``: they are asked of another holder, if any; of
        those every holder we knew of failed for, the center decides what happens next."""
        for key in self.fetches.not_fetched(peer, keys):
            self._out.append(SendToCenter(MissingData(key=key, worker=peer)))
        self._fetch_missing(list(self.fetches.waiters))

    def _unloadable(self, event: InputsUnloadable) -> None:
        # (the request was answered: its DataFetched, which comes first, said so)
        fetches = self.fetches
        for key, (exception_type, message) in event.errors.items():
            if fetches.in_flight.get(key) == event.worker:
                fetches.landed(key)
                self._log(key, "flight", "erred")
            for task_key in sorted(fetches.waiters.get(key, ())):
                ts = self.tasks.get(task_key)
                if ts is None or ts.state != "waiting":
                    continue
                self._drop_task(ts, "erred")
                self._out.append(SendToCenter(TaskErred(
                    key=task_key, exception_type=exception_type,
                    message=f"could not load its input {shown_key(key)}, fetched from "
                            f"{event.worker}, on this worker: {message}")))
            fetches.give_up_replica(key)  # only a copy was wanted: not from these bytes
        self._fetch_missing(list(fetches.waiters))

    def _succeeded(self, event: ExecutionSucceeded) -> None:
        key = event.key
        self.executing.discard(key)
        self.seceded.discard(key)
        ts = self.tasks.pop(key, None)
        if ts is not None and self._watching:
            self.reads.remove(key, ts.message.who_has)
        if ts is None or ts.state not in RUNNING:
            return  # freed while it ran: drop the result
        self.log.append((key, ts.state, "memory", self._stimulus_id, self._now))
        ts.state = "memory"
        self.nbytes[key] = event.nbytes
        small = small_msgpack = None
        if event.payload is not None:
            # before the value: should the store spill it at once, its pickle goes with it
            self.serialized[key] = event.payload
        if event.weight is not None:
            self._weighed(key, event.weight)
        self.data[key] = event.value
        if event.payload is not None:
            # (``nbytes`` is the payload's when there is one)
            if event.nbytes <= SMALL_VALUE_BYTES and event.payload.serializer == "pickle":
                small, small_msgpack = event.payload, event.msgpack
        # (positionally, once per task: a third cheaper than by keyword; a test holds the order)
        self._out.append(SendToCenter(task_finished(key, event.nbytes, event.type, event.start,
                                                    event.stop, small, small_msgpack,
                                                    ts.transfers or [], event.type_pickled)))
        # (a map's result is none of these: no call then)
        fetches = self.fetches
        if (key in fetches.waiters or key in fetches.who_has or key in fetches.sizes
                or key in fetches.tried):
            self._input_arrived(key)

    def _failed(self, event: ExecutionFailed) -> None:
        self.executing.discard(event.key)
        self.seceded.discard(event.key)
        ts = self.tasks.pop(event.key, None)
        if ts is not None:
            self.reads.remove(event.key, ts.message.who_has)
        if ts is None or ts.state not in RUNNING:
            return
        self._set_state(ts, "erred")
        error = event.error
        if ts.transfers is not None and error.start is not None:
            error = dataclasses.replace(error, transfers=ts.transfers)
        self._out.append(SendToCenter(error))

    def _inline_run_ended(self, event: InlineRunEnded) -> None:
        """A run of tasks on the event loop ended: each outcome goes through the transition
        its own event would (``_succeeded``, ``_failed``); the tasks given back unrun are
        ready again; then the next run, if the worker would run one: the ready tasks next
        in line, as long as they are of ``function`` without inputs (a map's), lent to the
        loop beyond the threads' slots. One stimulus for the run, not one a task."""
        lent = self.lent
        for outcome in event.outcomes:
            lent.discard(outcome.key)
            if type(outcome) is ExecutionSucceeded:
                self._succeeded(outcome)
            else:
                self._failed(outcome)  # type: ignore[arg-type]
        for key in event.declined:
            lent.discard(key)
            self.executing.discard(key)
            ts = self.tasks.get(key)
            if ts is not None and ts.state == "executing":
                self._set_state(ts, "ready")
                self.ready.push(ts)
        if not event.more or self.paused or event.function is None:
            return
        run = self.ready.pop_run(event.function, event.more)
        if not run:
            return
        executes = []
        log, stimulus_id, now, executing = self.log, self._stimulus_id, self._now, self.executing
        for ts in run:
            key = ts.key
            msg = ts.message
            # (as ``_start_ready`` starts a task without inputs, written out: once a task)
            log.append((key, "ready", "executing", stimulus_id, now))
            ts.state = "executing"
            executing.add(key)
            lent.add(key)
            executes.append(execute(key, msg.function, msg.args, {}, False, msg.value_msgpack))
        self._out.append(RunInline(executes))

    def _put(self, event: DataPut) -> None:
        for key, value in event.data.items():
            self._log(key, "released", "memory")
            self.nbytes[key] = event.nbytes.get(key, 0)
            self.data[key] = value
            self.serialized.pop(key, None)
            self._input_arrived(key)
        self._out.append(SendToCenter(KeysAdded(keys=dict(event.nbytes))))

    # -- decisions ----------------------------------------------------------------------------
    def _fetch_missing(self, keys) -> None:
        """Ask peers for the inputs of ``keys`` not yet here nor in flight (``fetches``)."""
        self._out.extend(self.fetches.requests(keys, self.data,
                                               self.paused or self.above_target))

    def _seceded(self, event: Seceded) -> None:
        """The task's thread runs on without a slot: the slot goes to the next ready task."""
        key = event.key
        if key not in self.executing:
            return
        self.executing.discard(key)
        self.seceded.add(key)
        ts = self.tasks.get(key)
        if ts is not None:  # (None: forgotten by a restart while it ran)
            self._set_state(ts, "long-running")
            self._out.append(SendToCenter(TaskSeceded(key=key)))

    def _rejoin(self, event: RejoinRequested) -> None:
        if event.key in self.seceded:
            if event.key not in self.rejoining:
                self.rejoining.append(event.key)
        else:
            self._out.append(Resume(event.key))  # never seceded: nothing to wait for

    def _start_ready(self) -> None:
        # Seceded tasks going on come first: they hold memory and others may wait on them.
        # A paused worker lets them go on too: finishing them is how memory is given back.
        free = self.nthreads - self.forgotten_slots
        while self.rejoining and len(self.executing) < free:
            key = self.rejoining.popleft()
            self.seceded.discard(key)
            self.executing.add(key)
            ts = self.tasks.get(key)
            if ts is not None:
                self._set_state(ts, "executing")
            self._out.append(Resume(key))
        # (a free thread asked first, then the queue's entries, without a call of ``len``:
        # a task arriving while another runs finds no thread)
        ready = self.ready
        while len(self.executing) < free and (ready.heap or ready.passed_over) \
                and not self.paused:
            ts = ready.pop(self._now)
            if ts is None:
                break
            msg = ts.message
            if msg.who_has:  # (a call only for a task with inputs: most of a map have none)
                self._start_with_inputs(ts)
                continue
            key = ts.key
            self.log.append((key, "ready", "executing", self._stimulus_id, self._now))
            ts.state = "executing"
            self.executing.add(key)
            self._out.append(execute(key, msg.function, msg.args, {},
                                     bool(msg.actor), msg.value_msgpack))

    def _start_with_inputs(self, ts: WorkerTask) -> None:
        """Run ``ts`` (ready, or ``reading`` and holding its slot) with its inputs. Those
        spilled are read back first: large ones on a thread while it waits ``reading``
        (``ReadSpilled``), the others here, at once."""
        key = ts.key
        msg = ts.message
        who_has = msg.who_has
        held = ts.read_back
        on_disk = ([dep for dep in who_has if self._on_disk(dep)]
                   if self._watching and self._any_on_disk is not None
                   and self._any_on_disk(who_has) else None)
        gone = [dep for dep in who_has if dep not in self.data and not (held and dep in held)]
        if gone:
            # Freed after the task became ready (a restarted center frees every key it
            # does not know): fetch them again rather than run without them.
            self._give_slot_back(ts)
            self._wait_for(ts, gone)
            return
        if on_disk:
            large = self._large_on_disk([dep for dep in on_disk if not (held and dep in held)])
            if large:
                self._read_for(ts, large)
                return
        try:
            inputs = {dep: held[dep] if held and dep in held else self.data[dep]
                      for dep in who_has}
        except SpillReadError as exc:
            # Its file is gone or damaged: from another holder, or computed again.
            self._give_slot_back(ts)
            self._spilled_value_lost(SpilledValueLost(exc.key, str(exc)))
            self._wait_for(ts, [exc.key])
            return
        except SpillLoadError as exc:
            self._give_slot_back(ts)
            self._inputs_do_not_load(ts, exc.key, exc.cause)
            return
        ts.read_back = None
        self._set_state(ts, "executing")
        self.executing.add(key)
        if on_disk or held:
            # (read back for it on a thread, they are in memory again by now: their other
            # readers go next all the same, before the values spill again)
            self._promote_readers([*(on_disk or ()), *(held or ())])
        self._out.append(execute(key, msg.function, msg.args, inputs,
                                 bool(msg.actor), msg.value_msgpack))

    def _read_for(self, ts: WorkerTask, keys: list[str]) -> None:
        """``ts`` takes a slot and waits ``reading`` for ``keys`` to be read back from disk
        on a thread; a key already being read for another task is not read twice."""
        if ts.state != "reading":
            self._set_state(ts, "reading")
            self.executing.add(ts.key)
        ts.waiting_on = set(keys)
        loading = self.loading
        new = []
        for dep in keys:
            readers = loading.get(dep)
            if readers is None:
                readers = loading[dep] = set()
                new.append(dep)
            readers.add(ts.key)
        if new:
            self._out.append(ReadSpilled(new))

    def _give_slot_back(self, ts: WorkerTask) -> None:
        """``ts`` no longer waits ``reading`` (it waits for a fetch, errs or is freed): its
        slot is free, and the reads under way for it go on for the store alone."""
        if ts.state != "reading":
            return
        self.executing.discard(ts.key)
        for dep in ts.waiting_on:
            readers = self.loading.get(dep)
            if readers is not None:
                readers.discard(ts.key)
        ts.waiting_on = set()
        ts.read_back = None

    def _spilled_read(self, event: SpilledValueRead) -> None:
        """A spilled value was read back on a thread (or could not be): back into the store,
        and to each task ``reading`` it, which runs once it has all its inputs."""
        key = event.key
        readers = [ts for ts in map(self.tasks.get, sorted(self.loading.pop(key, ())))
                   if ts is not None and ts.state == "reading"]
        if event.lost:
            self._spilled_value_lost(SpilledValueLost(key, event.lost))
            for ts in readers:
                self._give_slot_back(ts)
                self._wait_for(ts, [key])  # from another holder, or computed again
            return
        if event.unloadable is not None:
            exception_type, message = event.unloadable
            for ts in readers:
                self._give_slot_back(ts)
                self._inputs_do_not_load(ts, key, exception_type, message)
            return
        value = event.value
        if event.read and key in self.data:
            value = self._restore(key, value, event.nbytes_read)
        for ts in readers:
            ts.waiting_on.discard(key)
            if event.read:
                if ts.read_back is None:
                    ts.read_back = {}
                ts.read_back[key] = value
            if not ts.waiting_on:
                self._start_with_inputs(ts)

    def _watch(self, on: bool) -> None:
        """The store starts (``on``) or stops following the reads planned: every read queued
        now is reported to it, as if each task had been queued while it watched (a ready or
        running task's at its ready ``when``, a waiting one's at its priority); and the ready
        tasks' order asks it what is on disk."""
        self._watching = on
        self.ready.consult(self._any_on_disk if on else None)
        if not on:
            self.reads.clear()
            return
        for ts in self.tasks.values():
            who_has = ts.message.who_has
            if not who_has:
                continue
            if ts.state == "waiting":
                self.reads.add(ts.key, ts.priority, who_has)
            elif ts.state in ("ready", "reading", *RUNNING):
                priority, seq = ts.priority
                self.reads.add(ts.key, (priority - READ_WHEN_READY, seq), who_has)

    def _promote_readers(self, keys: list[str]) -> None:
        """``keys`` were read back from disk for a task: the ready tasks passed over for them
        run next, while the values are in memory, if nothing else of theirs is on disk."""
        for dep in keys:
            for reader in self.reads.readers(dep):
                ts = self.tasks.get(reader)
                if ts is not None and ts.state == "ready":
                    self.ready.promote(ts)

    def _spilled_value_lost(self, event: SpilledValueLost) -> None:
        """The value of ``key`` is gone from this worker: forgotten here, and the center told,
        which frees it here, and computes it again unless another worker holds it."""
        key = event.key
        if key not in self.data:
            return
        self._log(key, "memory", "lost")
        self.data.pop(key, None)
        self.nbytes.pop(key, None)
        self.serialized.pop(key, None)
        self._out.append(SendToCenter(MissingData(key=key, worker=self.address)))

    def _inputs_do_not_load(self, ts: WorkerTask, key: str, cause: BaseException | str,
                            message: str = "") -> None:
        """The input ``key`` of ``ts`` spilled and does not unpickle again (``cause``, or its
        exception type and ``message``): the task errs, as one whose input could not be
        unpickled after a transfer does."""
        del self.tasks[ts.key]
        self.reads.remove(ts.key, ts.message.who_has)
        self.ready.discard(ts)
        self._set_state(ts, "erred")
        if isinstance(cause, BaseException):
            exception_type, message = type(cause).__name__, str(cause)
        else:
            exception_type = cause
        self._out.append(SendToCenter(TaskErred(
            key=ts.key, exception_type=exception_type,
            message=f"could not load its input {shown_key(key)}, read back from this "
                    f"worker's disk: {message}")))

    def _memory_pressure(self, event: MemoryPressureChanged) -> None:
        """Paused (memory above the high-water mark): run nothing new until unpaused. Paused or
        above the target: fetch one input at a time; below again, fetch what the limit allows."""
        throttled = self.paused or self.above_target
        self.paused = event.paused
        self.above_target = event.above_target
        if throttled and not (self.paused or self.above_target):
            self._fetch_missing(list(self.fetches.waiters))

    def _restart(self, event: RestartRequested) -> None:
        """Forget every task and value (the cluster was restarted).

        The runs under way keep their threads (the task runner forgot them too): those
        holding a slot count in ``forgotten_slots`` until they end (``ForgottenRunEnded``) or
        secede, the seceded ones go on without one. Their keys may run again meanwhile,
        each run told apart from the forgotten one.
        """
        for ts in self.tasks.values():
            if ts.state == "reading":  # (no thread runs it yet: its slot is free at once)
                self.executing.discard(ts.key)
            self._log(ts.key, ts.state, "forgotten")
        self.forgotten_slots += len(self.executing - self.lent)
        self.executing.clear()
        self.lent.clear()
        self.seceded.clear()
        self.rejoining.clear()
        self.loading.clear()
        for key in self.data:
            self._log(key, "memory", "forgotten")
        self.data.clear()
        self.nbytes.clear()
        self.serialized.clear()
        self.tasks.clear()
        self.reads.clear()
        self.ready.clear()
        self.fetches.clear()

    def _forgotten_run_ended(self, event: ForgottenRunEnded) -> None:
        """A run a restart forgot ended: its slot, if it held one, is free; its outcome is
        dropped (the key's task, if it runs again, is another run)."""
        if event.held_slot:
            self.forgotten_slots -= 1

    def _forgotten_run_seceded(self, event: ForgottenRunSeceded) -> None:
        self.forgotten_slots -= 1

    def _signalled(self, event: SignalReceived) -> None:
        """Counted, and written into the stories of the tasks that may have sent it: those
        running now, and the last to end (an alarm fires after the task that armed it has
        returned). The entry keeps the task's state; its stimulus names the signal."""
        self.signals[event.signal] = self.signals.get(event.signal, 0) + 1
        self._stimulus_id = f"{event.signal}-{self._stimulus_id}"
        for key in sorted(self.executing | self.seceded):
            state = self.tasks[key].state
            self._log(key, state, state)
        last = self.last_ended()
        if last is not None:
            self._log(*last, last[1])

    def last_ended(self) -> tuple[str, str] | None:
        """The task that last stopped running here, and the state it went to."""
        entry = tasklog.last_ended(self.log)
        return None if entry is None else (entry[0], entry[2])

    def _terminated(self, event: Terminated) -> None:
        """A SIGTERM not from the nanny: a task's own ``os.kill`` returns before the worker
        stops, so the task that sent it may have ended already (its value, lost with the
        worker, would be computed again on the next worker, which it stops in turn). Named:
        the tasks running when the signal came, by the log (the one that sent it had not
        ended then, and one that started after it on the freed thread had not started); if
        none ran, the last to end, if it ended ``within`` seconds before (a subprocess's
        ``kill`` it left behind)."""
        named = tasklog.running_at(self.log, event.at, self.executing | self.seceded,
                                   event.within)
        if named:
            self._out.append(SendToCenter(WorkerTerminated(keys=named)))

    def _story(self, event: StoryRequested) -> None:
        entries = [{"key": key, "start": start, "finish": finish, "stimulus_id": stimulus_id,
                    "time": when, "worker": self.address}
                   for key, start, finish, stimulus_id, when in self.story(*event.keys)]
        self._out.append(SendToCenter(StoryReply(id=event.request, entries=entries)))

    def validate(self) -> None:
        """Assert what must hold between events (``invariants``): the tests call it after
        each step."""
        invariants.check(self)
