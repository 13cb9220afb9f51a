"""The values a worker holds, in memory up to a target and on disk beyond it.

``DataStore`` is the mapping ``WorkerState.data`` is: reads, writes and deletes look like a
dict's, and a value on disk is read back transparently. Each value in memory is weighed by its
estimated size; once they weigh more than the target, values go to the ``DiskMapping`` of
``spill.py`` in the order ``spill_order.SpillOrder`` keeps: what no task here will read again
first, the inputs of the next task to run last.

The reads planned (``plan_use``, from ``readers.UpcomingReads``) are followed only while the
worker is near spilling (``watching``): from the moment its values weigh half the target, its
process passes half the target at the memory monitor's look, or anything is about to spill,
whichever comes first. Far from it the
order cannot matter, and keeping it costs every task a few heap operations on the worker's
loop. As watching starts, the worker's state tells the store every read then queued
(``on_watch``), so the order is whole before the first value spills; it stops once nothing is
on disk and the values and the process are back under a quarter of the target.

When the process as a whole, not the values alone, runs short, the worker's memory monitor
has the store spill in the same order what ``spillpolicy`` decides (``spill_by_plan``), also
as a value is stored or read back between two of its looks (``process_plan``).

The store is plain dicts and ``SpillOrder``'s heap rather than ``zict``, because it is
touched several times per task and only from the worker's event loop: zict's locks and layers
cost a small task's result more (about a sixth of a worker's CPU per task) than the task
itself, and importing zict's package a worker's start-up 25 ms.

What cannot go to disk stays in memory and is reported once, never retried in a loop:

* a value that cannot be pickled, or one larger than the disk could ever hold, is *pinned*:
  kept in memory, outside the order of use, until it is freed (pausing cannot bring its
  memory back, so the monitor does not pause the worker for it);
* a disk that fails *suspends* spilling for a while (``spill_health``).

A value is taken out of memory only once its file is written: a write that fails loses
nothing. A large value's file is written on a thread while the loop goes on
(``spill_writes``); a write there that fails puts the value back in memory and suspends
spilling, as a failed write on the loop does; closing the store abandons the write under way
and waits for it to stop. The values spilled to make room for a task's input read back on a
thread (``make_room_for``) are all written there, whatever their size, and the read begins
once they have all left memory.

A file that cannot be read back (removed under the worker, damaged) raises
``SpillReadError``: the worker forgets the key and tells the center, which has it computed
again or fetched from another holder; a folder removed is made again at the next spill.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, MutableMapping
from sys import getsizeof
from typing import Any

from dist_protocol.serialize import SerializationError, deserialize, serialize

from . import spillpolicy
from .disposal import TRIM_AFTER_FREEING, WITHOUT_FINALIZERS, Disposer, runs_no_code_when_dropped
from .memory import format_bytes
from .sizeof import PLAIN_SCALARS, sizeof
from .spill import (DiskMapping, PendingWrite, SpillLoadError, SpillReadError,
                    SpillSerializationError, ValueTooLarge)
from .spill_order import SpillOrder
from .spill_health import SpillHealth
from .spill_writes import OFF_LOOP_FROM, OffLoopWrites, RoomWait, Writer
from .workspace import PREFIX, Workspace, claim, remove_abandoned

log = logging.getLogger("dist.worker")

# Fractions of the target: the order of planned reads is followed from the first, up to the
# second (apart, so that a worker hovering about one does not start and stop over and over).
WATCH_FROM = 0.5
WATCH_UNTIL = 0.25
_ABSENT = object()
# A value at least this large, spilled as it is stored, is given to a task of the same batch
# as it is (a smaller one is not worth the look per value stored)
SPILLED_IN_BATCH_FROM = 2**20
# A spilled value at least this large is read back on a thread to be sent to a peer or a
# client (``read_payload``): that adds no memory to what reading it on the loop took.
READ_OFF_LOOP_FROM = 8 * 2**20


class DataStore(MutableMapping):
    def __init__(self, target: float | None = None, directory: str | None = None,
                 max_spill: int | None = None, size_hint: Callable[[str], int | None]
                 = lambda key: None, clock: Callable[[], float] = time.monotonic,
                 spill_compression: str = "lz4", writer: Writer | None = None):
        parent = tempfile.gettempdir() if directory is None else directory
        try:
            remove_abandoned(parent)
            self._workspace = claim(parent)
        except OSError:
            # Not writable now: spilling (and ``check_directory``, at start) says why, and
            # makes the folder itself if the disk comes back.
            self._workspace = Workspace(os.path.join(parent, f"{PREFIX}{os.getpid()}"))
        self.directory = self._workspace.directory
        self.slow = DiskMapping(self.directory, max_spill, spill_compression)
        self.weights: dict[str, int] = {}  # key -> estimated bytes in memory, every key held
        # The pickles kept beside small values in memory (the worker's state fills this in, so
        # that serving them costs no second pickling); a value that spills takes its pickle to
        # disk, or each spilled value would still hold as much memory as before.
        self.serialized: dict[str, Any] = {}
        self._size_hint = size_hint
        # Whether the reads planned are followed (see the module's docstring), and whom to tell
        # when that changes: the worker's state, which then reports every read queued.
        self.watching = False
        self.on_watch: Callable[[bool], None] | None = None
        self.target = target
        # The values in memory that may spill, what they weigh, and the order they spill in.
        self._lru: dict[str, Any] = {}
        self._lru_weight = 0
        self.order = SpillOrder()
        self.pinned: dict[str, Any] = {}  # kept in memory whatever the target: see above
        self._pinned_weight = 0
        # Values being written on the writer's thread (None: every write on the loop), and
        # room being made for values read back (``make_room_for``), waiting for writes.
        self.writes = OffLoopWrites(writer)
        self.health = SpillHealth(self.directory, clock)
        self._clock = clock
        self.spilled_count = 0
        # Set by the worker's memory monitor: what to spill, when a value of the given weight
        # has just come into memory, given the bytes of the values in memory (``managed``;
        # ``spillpolicy``), so that a burst of values is caught as it arrives, not at the
        # monitor's next look.
        self.process_plan: Callable[[int, int], spillpolicy.SpillPlan] | None = None
        # The values let go of (freed, replaced, cleared) since the last ``hand_off_dropped``:
        # their finalizers run on the disposal thread, never on the event loop.
        self._dropped: list[Any] = []
        # Values spilled as they were stored, until the batch of events that stored them is
        # handled (``hand_off_dropped``): whoever stored one (the event carrying a task's
        # result) holds it that long anyway, so a task of the same batch that reads it gets
        # this very object, not a second copy read back from its file.
        self._spilled_in_batch: dict[str, Any] = {}
        self._freed_weight = 0  # bytes of values freed since memory was last given back
        self._weighed: dict[str, int] = {}  # weights said for values about to be stored
        self._disposer = Disposer()

    # -- sizes --------------------------------------------------------------------------------
    def weighed(self, key: str, weight: int) -> None:
        """The value next stored under ``key`` weighs ``weight`` bytes, as weighed on the
        thread of the task that made it: not weighed again here, on the event loop, where a
        class's own ``__sizeof__`` (user code) that slept held heartbeats, peers and
        clients, and an operator's stop, for as long."""
        self._weighed[key] = weight

    def _weight(self, key: str, value: Any) -> int:
        weight = self.weights.get(key)
        if weight is None:
            weight = self.weights[key] = sizeof(value, self._size_hint(key))
        return weight

    @property
    def target(self) -> float:
        return self._target

    @target.setter
    def target(self, value: float | None) -> None:
        self._target = float("inf") if value is None else value
        self._watch_from = self._target * WATCH_FROM

    # -- following the reads planned --------------------------------------------------------------
    def watch(self, on: bool) -> None:
        """Follow the reads planned from now on (``on``), or stop (only with nothing on disk:
        the ready tasks' order asks the store what is on disk only while it watches)."""
        if on == self.watching or (not on and len(self.slow)):
            return
        self.watching = on
        if not on:
            self.order.forget_plans()
        if self.on_watch is not None:
            self.on_watch(on)

    def look(self, process: int) -> None:
        """The memory monitor's look at the process (``process`` bytes, values and all):
        watch from half the target, until everything is back under a quarter of it."""
        level = max(process, self._lru_weight + self._pinned_weight)
        if level > self._watch_from:
            self.watch(True)
        elif self.watching and level < self._target * WATCH_UNTIL:
            self.watch(False)

    @property
    def managed(self) -> int:
        """Bytes of the values held in memory (estimated), those being written included."""
        return self._lru_weight + self._pinned_weight + self.writes.weight

    @property
    def writing(self) -> int:
        """Bytes of the values being written on the writer's thread (estimated)."""
        return self.writes.weight

    @property
    def pinned_weight(self) -> int:
        """Bytes of the values that must stay in memory (``pinned``): only freeing them
        gives their memory back."""
        return self._pinned_weight

    @property
    def spillable(self) -> int:
        """Bytes of the values in memory that may go to disk (all but the pinned)."""
        return self._lru_weight

    @property
    def spilled(self) -> int:
        """Bytes the values on disk would take in memory (estimated)."""
        return sum(self.weights[k] for k in self.slow)

    @property
    def spilled_disk(self) -> int:
        """Bytes of spill files on disk (compressed; values read back keep theirs)."""
        return self.slow.disk_bytes

    @property
    def spill_error(self) -> str | None:
        """Why spilling is suspended, if it is (``spill_health``)."""
        return self.health.error

    @property
    def spill_suspended(self) -> bool:
        return self.health.error is not None

    def in_memory(self, key: str) -> bool:
        return key in self._lru or key in self.pinned or key in self.writes

    def on_disk(self, key: str) -> bool:
        """Held, and only on disk: reading it means reading its file back."""
        return key in self.slow

    def any_on_disk(self, keys: Collection[str]) -> bool:
        if not len(self.slow):  # (nothing spilled: the usual case, one call)
            return False
        return any(key in self.slow for key in keys)

    # -- the mapping ---------------------------------------------------------------------------
    def plan_use(self, key: str, when: tuple[int, int] | None) -> None:
        """A task queued here will next read ``key`` at ``when`` (``None``: none will any
        more); the store need not hold ``key`` yet."""
        self.order.plan(key, when, key in self._lru)

    def __getitem__(self, key: str) -> Any:
        value = self._lru.get(key, _ABSENT)
        if value is not _ABSENT:
            self.order.touch(key)
            return value
        value = self.pinned.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        value = self.writes.get(key, _ABSENT)
        if value is not _ABSENT:  # (served from memory: the write goes on)
            return value
        if key not in self.slow:
            raise KeyError(key)
        known = self.weights.get(key)
        if known is not None and known <= self._target:
            # It comes back into memory: make room for it first, or the process holds the
            # whole target and this value too while it is read.
            self._make_room(known)
        try:
            value = self._spilled_in_batch.pop(key, _ABSENT)
            if value is _ABSENT:
                value = self.slow[key]
        except SpillReadError as exc:
            log.warning("%s: lost here, it comes from another holder or is computed again",
                        exc.strerror)
            raise
        except SpillLoadError as exc:
            log.warning("%s", exc)
            raise
        self._bring_back(key, value)
        return value

    def _bring_back(self, key: str, value: Any) -> None:
        """``value``, just read back from ``key``'s file, back in memory as the most
        recently used, unless it alone is over the target; its file stays (``cached``)
        should it be evicted again unchanged."""
        weight = self._weight(key, value)
        if weight <= self._target:
            self._keep(key, value, weight)
            del self.slow[key]
            self.spill_to_target()
            self._spill_for_process(weight)

    def __setitem__(self, key: str, value: Any) -> None:
        # (once per task: ``__contains__``, ``_keep`` and the spills' first checks written
        # out, and a number sized without the calls; ``weights`` holds every key held)
        if key in self.weights:
            self._discard(key)
        weight = self.weights[key] = (
            getsizeof(value) if type(value) in PLAIN_SCALARS
            else self._weighed.pop(key, 0) or sizeof(value, self._size_hint(key)))
        self._lru[key] = value
        self._lru_weight += weight
        self.order.add(key, weight > self._target)
        if self._lru_weight + self._pinned_weight > self._watch_from:
            if not self.watching:
                self.watch(True)
            if self._lru_weight + self._pinned_weight > self._target:
                self.spill_to_target()
        # (``_spill_for_process`` written out: a call fewer per value)
        process_plan = self.process_plan
        if process_plan is not None and self._lru:
            plan = process_plan(weight, self._lru_weight + self._pinned_weight)
            if plan is not spillpolicy.NOTHING:
                self.spill_by_plan(plan)
        if weight >= SPILLED_IN_BATCH_FROM and key in self.slow:
            self._spilled_in_batch[key] = value

    def _keep(self, key: str, value: Any, weight: int) -> None:
        self._lru[key] = value
        self._lru_weight += weight
        self.order.add(key, weight > self._target)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._discard(key)

    def _discard(self, key: str) -> None:
        value = self._lru.pop(key, _ABSENT)
        if value is not _ABSENT:
            if type(value) not in WITHOUT_FINALIZERS and not runs_no_code_when_dropped(value):
                self._dropped.append(value)
            weight = self.weights[key]
            self._lru_weight -= weight
            self._freed_weight += weight
            self.order.remove(key)
        else:
            value = self.pinned.pop(key, _ABSENT)
            if value is not _ABSENT:
                self._dropped.append(value)
                weight = self.weights[key]
                self._pinned_weight -= weight
                self._freed_weight += weight
            elif len(self.writes):
                self._abandon(key)
        slow = self.slow
        if slow.sizes or slow.cached:  # (a file to remove only once anything was spilled)
            slow.forget(key)
        self.weights.pop(key, None)
        self.serialized.pop(key, None)
        self._spilled_in_batch.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return (key in self._lru or key in self.pinned or key in self.slow
                or key in self.writes)

    def __iter__(self) -> Iterator[str]:
        yield from self.pinned
        yield from self._lru
        yield from self.writes.keys()
        yield from self.slow

    def __len__(self) -> int:
        return len(self.pinned) + len(self._lru) + len(self.writes) + len(self.slow)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        """Remove ``key`` without reading it back from disk (the value is not returned when
        it was only on disk: nobody freeing a key wants it loaded first)."""
        value = self._lru.get(key, _ABSENT)
        if value is _ABSENT:
            value = self.pinned.get(key, _ABSENT)
            if value is _ABSENT:
                value = self.writes.get(key, _ABSENT)
            if value is _ABSENT:
                if key not in self.slow:
                    if default:
                        return default[0]
                    raise KeyError(key)
                value = None
        self._discard(key)
        return value

    def clear(self) -> None:
        for key in list(self):
            self._discard(key)

    def hand_off_dropped(self) -> None:
        """Have the values let go of since the last call dropped on the disposal thread
        (``disposal``); the server calls this once each batch of events is handled."""
        # (twice a lone task, nearly always with nothing to do: tested here, without the calls)
        if self._spilled_in_batch:
            self._spilled_in_batch.clear()
        if self._dropped or self._freed_weight >= TRIM_AFTER_FREEING:
            self._hand_off()

    def _hand_off(self) -> None:
        release_memory = self._freed_weight >= TRIM_AFTER_FREEING
        if self._dropped or release_memory:
            self._disposer.drop(self._dropped, release_memory)
            self._dropped = []
            if release_memory:
                self._freed_weight = 0

    @property
    def dropping(self) -> bool:
        """Whether values let go of (spilled, freed) may still hold their memory: being
        written, or handed to the disposal thread and not yet dropped there."""
        return bool(len(self.writes)) or bool(self._dropped) or self._disposer.dropping

    def large_on_disk(self, keys: Collection[str]) -> list[str]:
        """Those of ``keys`` held on disk only whose values weigh ``READ_OFF_LOOP_FROM`` or
        more: their files are for ``read_payload`` to read on another thread than the loop."""
        if not len(self.slow) or self.writes.writer is None:
            return []
        return [key for key in keys
                if key in self.slow and self.weights.get(key, 0) >= READ_OFF_LOOP_FROM]

    def to_read_on_thread(self, keys: Collection[str]) -> list[str]:
        """Those of ``keys`` a task must have read back from disk, and large enough to be
        read on a thread (``read_value``) rather than on the loop: as ``large_on_disk``, but
        for a value spilled as it was stored in this batch, still at hand
        (``_spilled_in_batch``)."""
        large = self.large_on_disk(keys)
        if large and self._spilled_in_batch:
            large = [key for key in large if key not in self._spilled_in_batch]
        return large

    def make_room_for(self, key: str, done: Callable[[], None]) -> None:
        """On the loop, before ``key``'s file is read on a thread to come back into memory
        (``read_value``): values spill until it fits under the target, as ``__getitem__``
        makes room, but their files are written on the writer's thread, all of them, not only
        the large ones. ``done`` is called on the loop once every one of those writes has
        ended (at once when none was needed): only then is the value read, so that the
        process never holds the values leaving and the value coming back at once. Written
        on the loop, making room for a value of hundreds of megabytes held it as long as
        reading it had."""
        known = self.weights.get(key)
        if (self.writes.writer is None or key not in self.slow or known is None
                or known > self._target
                or self._lru_weight + self._pinned_weight + known <= self._target
                or not self.health.may_spill()):
            done()
            return
        wait = self.writes.room_wait(done)
        self._guarded(lambda: self._spill_until_below_target(known, wait=wait))
        self.writes.room_begun(wait)

    def read_value(self, key: str) -> tuple[Any, int]:
        """``key``'s value unpickled from its file, and the bytes read: changes nothing, so
        it may run on another thread (raising ``SpillReadError`` when the file cannot be
        read, the key freed meanwhile included, and ``SpillLoadError`` when the value does
        not unpickle, ``KeyError`` when it is not on disk); ``restore`` then takes it on the
        loop."""
        payload, size = self.slow.read_file(key)
        try:
            return deserialize(payload), size
        except MemoryError:
            raise
        except Exception as exc:  # the value's own code, whatever it raises
            raise SpillLoadError(key, exc) from exc

    def restore(self, key: str, value: Any, nbytes_read: int) -> Any:
        """On the loop: ``value`` was read back from ``key``'s file on a thread
        (``read_value``, ``nbytes_read`` bytes). Back in memory as ``__getitem__`` puts a
        value read back, unless it came back meanwhile (then the value in memory is
        returned, and used) or was freed."""
        if key not in self.slow:
            current = self._lru.get(key, _ABSENT)
            if current is _ABSENT:
                current = self.pinned.get(key, _ABSENT)
            if current is _ABSENT:
                current = self.writes.get(key, _ABSENT)
            return value if current is _ABSENT else current
        self.slow.bytes_read += nbytes_read
        self._bring_back(key, value)
        return value

    def read_payload(self, key: str) -> tuple[Any, int]:
        """The serialized value of ``key`` from its file, and the bytes read: changes
        nothing, so it may run on another thread (the key may be freed meanwhile: then it
        raises ``SpillReadError``); ``payload(key, read=...)`` then takes it on the loop."""
        return self.slow.read_file(key)

    def payload(self, key: str, read: tuple[Any, int] | None = None):
        """The serialized value of ``key`` when it is on disk only (serving it to a peer or
        client then needs no unpickling and no memory for the value), else ``None``; ``read``
        is what ``read_payload`` read of it on another thread, if it did."""
        if read is not None and key in self.slow:
            payload, size = read
            self.slow.bytes_read += size
            return payload
        if key in self.slow:
            try:
                return self.slow.read(key)
            except SpillReadError as exc:
                log.warning("%s: lost here, it comes from another holder or is computed "
                            "again", exc.strerror)
                raise
        return None

    # -- spilling -------------------------------------------------------------------------------
    def check_directory(self) -> bool:
        """Try the spill directory now (at start), so a bad one is reported before the first
        spill needs it; spilling is suspended (and retried) when it does not work."""
        try:
            self.slow.probe()
        except OSError as exc:
            self.health.suspend(f"{type(exc).__name__}: {exc}")
            return False
        return True

    def evict(self, keep: Collection[str] = ()) -> int:
        """Spill the first value in spill order not in ``keep``; its estimated bytes (0:
        nothing spilled). A running task's inputs are kept: spilling them frees nothing."""
        if not self._lru or not self.health.may_spill():
            return 0

        def spill_one() -> int:  # chosen again after a value that cannot spill is pinned
            key = self.order.first(keep)
            return 0 if key is None else self._spill(key)

        return self._guarded(spill_one) or 0

    def spill_to_target(self) -> None:
        """Spill until the values in memory weigh no more than the target."""
        if self._lru_weight + self._pinned_weight > self._target:
            if self.health.may_spill():
                self._guarded(self._spill_until_below_target)
        elif self.health.retry_due() and not len(self.writes):
            self._probe_again()

    def _probe_again(self) -> None:
        """Nothing to spill, and time to try a disk that failed: whether it would take the
        largest value that may go there next. Else a disk freed meanwhile stayed reported as
        failing (``spill_error``) until the worker next needed to spill."""
        largest = max((self.weights.get(key, 0) for key in self._lru), default=0)
        try:
            self.slow.probe(largest)
        except OSError as exc:
            self.health.suspend(f"{type(exc).__name__}: {exc}")
        else:
            self.health.works_again()

    def spill_by_plan(self, plan: spillpolicy.SpillPlan, keep: Collection[str] = (),
                      budget: float | None = None) -> int:
        """Spill values in spill order, leaving out ``keep``, while ``plan`` wants them (for
        at most ``budget`` seconds); the estimated bytes spilled."""
        if not self._lru or not plan.needed or not self.health.may_spill():
            return 0
        spilled = 0
        until = None if budget is None else self._clock() + budget

        def spill_planned() -> None:  # resumed after a value that cannot spill is pinned
            nonlocal spilled
            while self._lru and (until is None or self._clock() < until):
                key = self.order.first(keep)
                if key is None:
                    return
                weight = self.weights[key]
                wanted = key in self.order.planned and key not in self.order.heavy
                if not plan.wants(weight, wanted):
                    return
                try:
                    spilled += self._spill(key)
                except BaseException:
                    plan.undo(weight)
                    raise

        self._guarded(spill_planned)
        return spilled

    def _spill_for_process(self, weight: int) -> None:
        if self.process_plan is not None and self._lru:
            plan = self.process_plan(weight, self._lru_weight + self._pinned_weight)
            if plan is not spillpolicy.NOTHING:  # (what nearly every value gets)
                self.spill_by_plan(plan)

    def _spill_until_below_target(self, room: int = 0, at_once: bool = False,
                                  wait: RoomWait | None = None) -> None:
        while self._lru and self._lru_weight + self._pinned_weight + room > self._target:
            key = self.order.first()
            if key is None:
                break
            self._spill(key, at_once, wait)

    def _make_room(self, weight: int) -> None:
        """Spill until ``weight`` more bytes in memory stay within the target. Written at
        once, on the loop: the value it makes room for is read back on the loop next, and
        written on the thread, what made room would still be in memory beside it."""
        if (self._lru_weight + self._pinned_weight + weight > self._target
                and self.health.may_spill()):
            self._guarded(lambda: self._spill_until_below_target(weight, at_once=True))

    def _spill(self, key: str, at_once: bool = False, wait: RoomWait | None = None) -> int:
        """Write ``key``'s value to disk, then let go of it in memory; its weight. A large
        value's write is only begun (``_write_off_loop``), unless it is to be ``at_once``;
        so is any value's that ``wait`` waits for (room made for a value read back)."""
        weight = self.weights[key]
        if self.writes.writer is not None and key not in self.slow.cached and (
                wait is not None
                or (weight >= OFF_LOOP_FROM and not at_once and not len(self.writes))):
            return self._write_off_loop(key, weight, wait)
        payload = self.serialized.get(key)
        if payload is not None and key not in self.slow.cached:
            self.slow.write(key, payload)  # as it is: no second pickling
        else:
            self.slow[key] = self._lru[key]  # raises, and nothing changes, when it cannot
        self.serialized.pop(key, None)
        self._dropped.append(self._lru.pop(key))  # (finalized on the disposal thread)
        self.order.remove(key)
        self._lru_weight -= weight
        return weight

    def _write_off_loop(self, key: str, weight: int, wait: RoomWait | None = None) -> int:
        """Begin writing ``key``'s value on the writer's thread: it is serialized and its room
        on disk made here (raising as a write on the loop does, nothing changed), then it
        leaves the spill order and the target's count, but stays in memory until
        ``_written`` (``wait``, if given, is told once it has ended)."""
        value = self._lru[key]
        payload = self.serialized.get(key)
        if payload is None:
            try:
                payload = serialize(value)
            except SerializationError as exc:
                raise SpillSerializationError(key, exc) from exc
        pending = self.slow.prepare(key, payload, staged=True)
        del self._lru[key]
        self.order.remove(key)
        self.serialized.pop(key, None)
        self._lru_weight -= weight
        self.writes.begin(pending, value, weight, self._written, wait)
        return weight

    def _written(self, pending: PendingWrite, error: BaseException | None) -> None:
        """On the loop: the write of ``pending`` ended, with ``error`` or without."""
        finished = self.writes.finish(pending)
        if finished is None:  # freed or replaced meanwhile
            self.slow.abandon(pending)
            return
        value, weight = finished
        key = pending.key
        if error is None:
            try:
                self.slow.finish(pending)
            except OSError as exc:
                error = exc
        else:
            self.slow.abandon(pending)
        if error is not None:
            self._keep(key, value, weight)  # nothing lost: back in memory, as it was
            if isinstance(error, FileNotFoundError):
                # Its folder (or its file) was removed while it was written, as a cleaner of
                # old files in /tmp does: not a disk that fails. Written again at once, to
                # the folder made anew, as a write on the loop makes it.
                self._guarded(lambda: self._spill(key) if key in self._lru else 0)
                return
            self.health.suspend(f"{type(error).__name__}: {error}")
            return
        self.spilled_count += 1
        self.health.works_again()
        self._dropped.append(value)  # (finalized on the disposal thread)
        self._hand_off()

    def _abandon(self, key: str) -> None:
        """``key`` is freed or replaced while it is being written: the write stops at its
        next step and is forgotten when it ends (``_written``)."""
        abandoned = self.writes.abandon(key)
        if abandoned is None:
            return
        value, weight = abandoned
        self._freed_weight += weight
        if type(value) not in WITHOUT_FINALIZERS and not runs_no_code_when_dropped(value):
            self._dropped.append(value)

    def _guarded(self, action: Callable[[], Any]) -> Any:
        """Spill, and deal with what spilling can raise. No value is ever lost: a value
        leaves memory only once its write has succeeded. The values spilled are handed to
        the disposal thread at once: the memory monitor spills outside any batch of events.
        Whatever made it spill, the reads planned are followed from here on, so the first
        value chosen is chosen by them."""
        if not self.watching:
            self.watch(True)
        try:
            return self._spill_guarded(action)
        finally:
            self._hand_off()

    def _spill_guarded(self, action: Callable[[], Any]) -> Any:
        for _ in range(len(self._lru) + 1):
            before = len(self.slow)
            try:
                result = action()
            except SpillSerializationError as exc:
                self._pin(exc.key, f"it cannot be pickled ({exc.cause})")
                continue  # the same again, with that value out of the way
            except ValueTooLarge as exc:
                self._pin(exc.key, str(exc))
                continue
            except OSError as exc:
                self._spilled(before)
                self.health.suspend(f"{type(exc).__name__}: {exc}")
                return None
            self._spilled(before)
            if len(self.slow) > before:
                self.health.works_again()
            return result
        return None

    def _spilled(self, before: int) -> None:
        self.spilled_count += max(0, len(self.slow) - before)

    def _pin(self, key: str, reason: str) -> None:
        value = self._lru.pop(key)  # out of the spill order, so no eviction tries it again
        self.order.remove(key)
        weight = self.weights.get(key, 0)
        self._lru_weight -= weight
        self.pinned[key] = value
        self._pinned_weight += weight  # still counts towards the target: others spill sooner
        log.warning("keeping %s (%s) in memory: %s", key, format_bytes(weight), reason)

    def close(self) -> None:
        """Delete every spill file, and the directory this store made; end the disposal
        thread once it has dropped what it was handed. A write under way is abandoned, and
        waited for until it stops."""
        for key in self.writes.keys():
            self._abandon(key)
        self.writes.close()
        self.slow.close()
        self._workspace.remove()
        self.hand_off_dropped()
        self._disposer.close()

