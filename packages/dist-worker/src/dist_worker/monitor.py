"""Heartbeats and memory: what the worker tells the center every interval, and what it does as
its memory grows towards ``--memory-limit`` (the thresholds of ``memory.MemoryPolicy``).

Every ``MEMORY_INTERVAL`` the process's resident memory (RSS) is read and compared:

* above *spill*, values go to disk in the store's spill order until the process is back
  under *target* by the values' estimated sizes, except that values a queued task reads stay
  while a task runs and spilling every value could not bring the process under *pause*
  (``spillpolicy.by_process``). The store spills past *target* on its own, by the values
  alone, whenever one is stored; and when a value comes into memory with the process past
  *pause*, back to *pause* at once (``plan_on_store``), not at the next look;
* above *pause* (with values pinned in memory, which no pause sends to disk -- one larger
  than the spill space or one that cannot be pickled -- the pause fraction of the memory left
  beside them, ``MemoryPolicy.pause_bytes``), or when spilling is impossible (a full or
  unwritable disk) while memory is past *target*/*spill*, the worker starts no new task and
  the center sends it no more work and moves its queued tasks elsewhere; it resumes when
  memory is back under those marks;
* above *terminate* even after spilling everything it can and giving freed memory back to the
  system, a worker under a nanny exits so the nanny starts a fresh process: the last resort,
  since everything it held is lost (the center recomputes what it can). A peak between
  *terminate* and the limit must last ``TERMINATE_AFTER`` to count; past the limit it need not.
  Before it exits it names to the center the values it blames (``blame_for_restart``), whose
  tasks the center counts the restart against, so that a value too large for the worker fails
  as ``KilledWorker`` rather than restart it again each time it is made again.

Around each task on a thread (``make_room``, ``task_starting``, ``after_task``), the worker
measures how far the process grew while it ran, and before the next task of the same kind
spills results until the process plus that growth stays under *pause* (``taskmemory.py``);
above the target, it returns freed memory to the system as each task ends, and when paused
with no task running, before spilling for it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from dist_protocol.messages import Heartbeat, Message, RestartingForMemory

from .disposal import release_unused_memory
from .events import Event, MemoryPressureChanged
from .memory import MemoryPolicy, format_bytes
from .file_mask import put_back_file_mask
from .open_files import OpenFileLimit
from .warning_filters import put_back_warning_filters
from .process_meter import process_meter
from .spillpolicy import NOTHING, SpillPlan, before_task, by_process, on_arrival
from .store import DataStore
from .taskmemory import PeakMeter, TaskMemory

log = logging.getLogger("dist.worker")

MEMORY_INTERVAL = 0.1  # seconds between looks at the process's memory
SPILL_BUDGET = 0.5  # seconds of spilling per look, so heartbeats and requests go on
RESTART_EXIT_CODE = 75  # tells the nanny to start the worker again at once
RELEASE_INTERVAL = 1.0  # seconds between asking allocators to give back what they keep
# Between *terminate* and the limit itself, the process restarts once it has stayed there this
# long: a task's short peak that falls back on its own costs no restart (and all the results
# the worker holds). Past the limit, or for longer, it restarts at the next look.
TERMINATE_AFTER = 0.5
# While values let go of are still being dropped (a value just spilled: on disk, its memory
# about to go back), a process between *terminate* and the limit is not restarted for up to
# this long: it is past terminate by memory already on its way out. A large value spilled as
# it was stored held the event loop (and so the monitor's looks) for longer than
# ``TERMINATE_AFTER`` while it was written, and the first look after found it written but not
# yet dropped: the worker was restarted, its result lost, the task run again.
DROPPING_GRACE = 5.0
# A workload whose tasks themselves take memory crosses the spill threshold with nothing to
# spill at every task: warn once in this many seconds (as dask does), not at every crossing.
UNMANAGED_WARNING_INTERVAL = 300.0
# A value at least this large, stored between two looks, has the process's memory read then
# (a few microseconds); smaller ones only when the last look's figures say it may be past
# *pause*, so that a map of small tasks pays nothing.
STORE_CHECK_BYTES = 2**20


class Monitored(Protocol):
    """What the monitor needs of the worker (the server's ``Worker``): it reads memory and
    tells the worker what it found as an event, never acting on the worker's state itself."""

    heartbeat_interval: float
    memory_limit: int
    nthreads: int
    closing: bool
    memory_policy: MemoryPolicy
    store: DataStore
    # Bytes of tasks' inputs being read back from disk on a thread, room made for each under
    # the target before its read began (``DataStore.make_room_for``).
    reading_inputs: int

    @property
    def paused(self) -> bool: ...

    def metrics(self) -> dict: ...

    def send_center(self, *messages: Message) -> None: ...

    def flush_center(self) -> None: ...

    def handle(self, *events: Event) -> None: ...


class Monitor:
    def __init__(self, worker: Monitored):
        self.worker = worker
        # Read once: a task may change the environment (os.environ.clear()).
        self.under_nanny = bool(os.environ.get("DIST_NANNY_PID"))
        # What the center knows the nanny by, the same across the restarts it makes
        self.nanny_id = (f"{socket.gethostname()}:{os.environ['DIST_NANNY_PID']}"
                         if self.under_nanny else None)
        self._unmanaged_warning_after = 0.0  # clock time before which it is not repeated
        self._terminate_warned = False
        self._above_target = False  # as last told to the worker
        # Whether a pause for the disk was logged since it last took values (a full disk
        # pauses and resumes the worker by turns, a task each time memory falls back: the
        # first pause is logged, the turns after it are not)
        self._disk_pause_logged = False
        self._released_at = 0.0
        self._terminate_since: float | None = None  # first look past terminate, of a run
        self.clock = time.monotonic
        # As last sent to the center, read-only: the stall watch's thread sends it again.
        self.last_metrics: Mapping[str, Any] = MappingProxyType({})
        self.task_memory = TaskMemory()  # what tasks took while they ran, by kind
        self._peaks = PeakMeter()
        self._running: set[int] = set()  # the threads running a task (measured ones)
        self._reading: dict[str, Collection[str]] = {}  # running task -> the inputs it reads
        self._unmanaged = 0  # the process less its values, at the last look
        # The policy ``plan_on_store`` read last, and its pause threshold in bytes.
        self._store_policy: MemoryPolicy | None = None
        self._store_pause: int | None = None
        self._process = process_meter()  # None: no metrics (no /proc, no psutil)
        self._open_files = OpenFileLimit()  # put back at each heartbeat if a task lowered it
        if self._process is not None:
            self._process.cpu_percent()
            if worker.memory_policy.bytes_at("spill") is not None:
                worker.store.process_plan = self.plan_on_store

    def rss(self) -> int:
        return self._process.rss() if self._process is not None else 0

    def cpu(self) -> float:
        return self._process.cpu_percent() if self._process is not None else 0.0

    async def run(self) -> None:
        worker = self.worker
        while not worker.closing:
            await asyncio.sleep(worker.heartbeat_interval)
            self._open_files.put_back()
            put_back_file_mask()
            put_back_warning_filters()
            worker.send_center(Heartbeat(metrics=self.metrics(self.rss())))

    async def watch_memory(self) -> None:
        if not self.worker.memory_policy.limit or self._process is None:
            return
        while not self.worker.closing:
            await asyncio.sleep(MEMORY_INTERVAL)
            self.check_memory(self.rss())

    def metrics(self, rss: int) -> dict:
        worker = self.worker
        store = worker.store
        managed = store.managed
        metrics = worker.metrics()
        metrics.update(memory=rss, cpu=self.cpu(), nthreads=worker.nthreads,
                       memory_limit=worker.memory_limit, managed=managed,
                       unmanaged=max(0, rss - managed), spilled=store.spilled,
                       spilled_disk=store.spilled_disk, spill_count=store.spilled_count,
                       spill_written=store.slow.bytes_written, spill_read=store.slow.bytes_read,
                       spill_writing=store.writing,
                       memory_target=worker.memory_policy.bytes_at("target"))
        if store.spill_error is not None:
            metrics["spill_error"] = store.spill_error
        self.last_metrics = MappingProxyType(metrics)
        return metrics

    def check_memory(self, rss: int) -> None:
        worker = self.worker
        policy = worker.memory_policy
        store = worker.store
        target, spill = policy.bytes_at("target"), policy.bytes_at("spill")
        terminate = policy.bytes_at("terminate")
        store.look(rss)  # near spilling: the store follows what queued tasks will read
        store.spill_to_target()  # also tries a failed disk again, once it is time to
        pause = policy.bytes_at("pause")
        if pause is not None and rss > pause and not self._running \
                and time.monotonic() - self._released_at > RELEASE_INTERVAL:
            # Paused between tasks: what the last ones left with the allocators goes back
            # first, before values are spilled to make up for it.
            self._released_at = time.monotonic()
            release_unused_memory()
            rss = self.rss()
        # An input being read back for a task already has its room under the target: the
        # memory it takes as it is read is not memory to spill other values for. Spilled for
        # it (a look falls in the middle of a read on a thread, with no task running), they
        # were the next tasks' inputs, read back once more moments later.
        coming = self.worker.reading_inputs
        if spill is not None and rss - coming > spill:
            rss = self._spill(by_process(policy, rss - coming, store.spillable,
                                         task_running=bool(self._running)), rss)
        if ((spill is not None and rss > spill
                and time.monotonic() - self._released_at > RELEASE_INTERVAL)
                or (terminate is not None and rss > terminate)):
            # Nothing (more) to spill, or not enough: what is left may be memory that
            # allocators keep for reuse after the values in it were freed.
            self._released_at = time.monotonic()
            release_unused_memory()
            rss = self.rss()
        if terminate is not None:
            self._check_terminate(rss, terminate)
        over_spill = ((target is not None and store.managed > target)
                      or (spill is not None and rss > spill))
        # Pinned values (larger than the spill space, or unpicklable) leave memory only when
        # freed, which waiting cannot bring about: paused for them, the worker would run no
        # other task while they are wanted. It pauses within the memory left beside them.
        if store.pinned_weight:
            pause = policy.pause_bytes(store.pinned_weight)
        paused = (pause is not None and rss > pause) or (store.spill_suspended and over_spill)
        # Above the target, every input arriving adds memory no target accounts for until it
        # is stored: the worker then fetches one at a time.
        above_target = target is not None and rss > target
        self._unmanaged = max(0, rss - store.managed)
        if paused == worker.paused and above_target != self._above_target:
            self._above_target = above_target
            worker.handle(MemoryPressureChanged(paused, above_target))
        if paused != worker.paused:
            for_disk = store.spill_suspended and not (pause is not None and rss > pause)
            if not store.spill_suspended:
                self._disk_pause_logged = False
            quiet = for_disk and self._disk_pause_logged
            if paused:
                why = (f"cannot spill ({store.spill_error})" if for_disk else
                       f"above {policy.pause:.0%} of the limit {format_bytes(policy.limit)}")
                (log.debug if quiet else log.warning)(
                    "worker memory %s (%s managed, %s spilled): %s; pausing new work%s",
                    format_bytes(rss), format_bytes(store.managed),
                    format_bytes(store.spilled), why,
                    "; it resumes and pauses by turns as memory allows, until the disk takes "
                    "values again (said once)" if for_disk else "")
                self._disk_pause_logged = self._disk_pause_logged or for_disk
            else:
                (log.debug if quiet else log.warning)("worker memory %s: resuming work",
                                                      format_bytes(rss))
            self._above_target = above_target
            worker.handle(MemoryPressureChanged(paused, above_target))
            worker.send_center(Heartbeat(metrics=self.metrics(rss)))

    def make_room(self, key: str, inputs: Collection[str] = ()) -> None:
        """Before task ``key`` starts on a thread: spill results (not its ``inputs``, which
        it holds) until the process plus the memory tasks of its kind took while they ran
        stays under the pause threshold, so that the task's own memory (which no estimate
        sees until it returns) does not carry the process past pause, or terminate."""
        if inputs and self.worker.memory_policy.limit:
            self._reading[key] = inputs  # (blamed too, should their reading restart us)
        if self._process is None or not self.worker.store.spillable:
            return
        rss = self.rss()
        plan = before_task(self.worker.memory_policy, rss, self.task_memory.expected(key))
        if plan.needed:
            self._spill(plan, rss, inputs, warn=False)

    def plan_on_store(self, weight: int, managed: int) -> SpillPlan:
        """What the store spills as a value of ``weight`` bytes comes into memory between
        two looks (``managed``: the bytes of the values in memory now, this one's too):
        decided on the process's memory now, when it may be past *pause*."""
        policy = self.worker.memory_policy
        if policy is not self._store_policy:  # (asked for every value stored: kept)
            self._store_policy, self._store_pause = policy, policy.bytes_at("pause")
        pause = self._store_pause
        if pause is None or (weight < STORE_CHECK_BYTES
                             and self._unmanaged + managed <= pause):
            return NOTHING
        return on_arrival(policy, self.rss() - self.worker.reading_inputs)  # (as at a look)

    def task_starting(self) -> int:
        """On the task's thread, as it starts: the process's size then (and the peak meter
        reset), for ``after_task``. Without a memory limit nothing is measured."""
        if not self.worker.memory_policy.limit or self._process is None:
            return 0
        self._running.add(threading.get_ident())
        self._peaks.reset()
        return self.rss()

    def after_task(self, key: str, started_at: int) -> None:
        """On the task's thread, once its inputs and result are let go: remember how far the
        process grew while it ran; above the target, give the memory the allocators kept
        back to the system now, not a second later (reading a parquet file leaves about four
        times the frame in pyarrow's pool)."""
        self._reading.pop(key, None)
        if not self.worker.memory_policy.limit or self._process is None:
            return
        self._running.discard(threading.get_ident())
        # (the size now from the same read as the peak where the kernel gives both: one
        # system call less after every task)
        peak, rss = self._peaks.peak_and_size()
        if rss is None:
            rss = self.rss()
        self.task_memory.record(key, (rss if peak is None else peak) - started_at)
        target = self.worker.memory_policy.bytes_at("target")
        if target is not None and rss > target:
            release_unused_memory()

    def _check_terminate(self, rss: int, terminate: int) -> None:
        """Past *terminate* even after spilling and releasing memory: restart, unless it is
        a spike under the limit itself that has lasted less than ``TERMINATE_AFTER``."""
        now = self.clock()
        if rss <= terminate:
            self._terminate_since = None
            return
        if self._terminate_since is None:
            self._terminate_since = now
            if rss <= self.worker.memory_policy.limit:
                log.warning("worker memory %s is above %s, %.0f%% of the limit, after spilling "
                            "and releasing memory: restarting unless it falls within %g s",
                            format_bytes(rss), format_bytes(terminate),
                            100 * (self.worker.memory_policy.terminate or 0), TERMINATE_AFTER)
        if rss > self.worker.memory_policy.limit:
            self._terminate(rss, terminate)
        elif now - self._terminate_since >= TERMINATE_AFTER and not (
                self.worker.store.dropping and now - self._terminate_since < DROPPING_GRACE):
            self._terminate(rss, terminate)

    def _held_sizes(self, excess: int) -> dict[str, int]:
        """The bytes of the values in memory, and of those running tasks are reading (from
        disk, or as they arrived): what may be blamed for a restart. With no task running
        and those short of ``excess``, every value held: the memory past terminate is then
        values spilled but still resident (a 250 MB value on a 300 MB worker, written as it
        was stored, kept the process at 292 MB with nothing in memory and nothing running)."""
        store = self.worker.store
        weights = store.weights
        held = {key: nbytes for key, nbytes in weights.items() if store.in_memory(key)}
        for inputs in list(self._reading.values()):  # (tasks' threads change it)
            held.update((key, weights[key]) for key in inputs if key in weights)
        if not self._running and sum(held.values()) < excess:
            return dict(weights)
        return held

    def _spill(self, plan: SpillPlan, rss: int, keep: Collection[str] = (),
               warn: bool = True) -> int:
        """Spill what ``plan`` wants (judged by the sizes spilled: the RSS itself falls only
        as the allocator returns memory); the RSS after."""
        store = self.worker.store
        # (``rss`` was read before spilling: the values then in memory are what it holds of
        # them. Not ``managed`` after plus the bytes spilled: a large value whose write has
        # only begun is in both, and was counted twice)
        managed = store.managed
        spilled = store.spill_by_plan(plan, keep, SPILL_BUDGET)
        spill = self.worker.memory_policy.bytes_at("spill")
        unmanaged = rss - managed
        if (warn and spill is not None and unmanaged > spill
                and self.clock() >= self._unmanaged_warning_after):
            self._unmanaged_warning_after = self.clock() + UNMANAGED_WARNING_INTERVAL
            log.warning("worker memory %s is above the spill threshold, and spilling cannot "
                        "bring it under: %s is unmanaged (held by tasks, libraries or the "
                        "allocator, not by results; %s managed)", format_bytes(rss),
                        format_bytes(unmanaged), format_bytes(store.managed))
        return self.rss() if spilled else rss

    def _terminate(self, rss: int, terminate: int) -> None:
        if self.under_nanny:
            blamed = blame_for_restart(self._held_sizes(rss - terminate), rss - terminate)
            log.error("worker memory %s is above %s, %.0f%% of the limit: restarting%s",
                      format_bytes(rss), format_bytes(terminate),
                      100 * (self.worker.memory_policy.terminate or 0),
                      "".join(f"; blamed {key} ({format_bytes(nbytes)})"
                              for key, nbytes in blamed.items()))
            if blamed:
                # Written now: the process ends before the loop's next pass would send it.
                self.worker.send_center(RestartingForMemory(keys=blamed, memory=rss))
                self.worker.flush_center()
            self.worker.store.close()  # os._exit runs no clean-up: remove the spill files
            os._exit(RESTART_EXIT_CODE)  # the nanny restarts us; the center reschedules
        if not self._terminate_warned:
            self._terminate_warned = True
            log.error("worker memory %s is above %s, %.0f%% of the limit, and there is no "
                      "nanny to restart this worker", format_bytes(rss), format_bytes(terminate),
                      100 * (self.worker.memory_policy.terminate or 0))


def blame_for_restart(held: Mapping[str, int], excess: int) -> dict[str, int]:
    """Of the values ``held`` (key -> bytes), the largest that together make up the
    ``excess`` of the process over *terminate*; none when all of them together cannot: the
    memory is then the running tasks' own (which the center counts the restart against), or
    the process's."""
    if excess <= 0 or sum(held.values()) < excess:
        return {}
    blamed = {}
    for key, nbytes in sorted(held.items(), key=lambda item: item[1], reverse=True):
        blamed[key] = nbytes
        excess -= nbytes
        if excess <= 0:
            break
    return blamed
