"""The values a worker holds, in memory up to a target and on disk beyond it.

``DataStore`` is the mapping ``WorkerState.data`` is: reads, writes and deletes look like a
dict's, and a value on disk is read back transparently. The values in memory are kept in the
order they were last used, each weighed by its estimated size; once they weigh more than the
target, the least recently used go to the ``DiskMapping`` of ``spill.py`` (a value heavier
than the whole target first). That is what dask's workers do with ``zict.Buffer``; this one is
a plain dict kept in use order, because the store is touched several times per task and only
from the worker's event loop: zict's locks and layers cost a small task's result more (about
a sixth of a worker's CPU per task) than the task itself, and importing zict's package a
worker's start-up 25 ms.

What cannot go to disk stays in memory and is reported once, never retried in a loop:

* a value that cannot be pickled, or one larger than the disk could ever hold, is *pinned*:
  kept in memory, outside the order of use, until it is freed;
* a disk that fails (full, read-only, removed) *suspends* spilling for a while; everything
  stays in memory, and the worker's monitor pauses the worker instead (``spill_suspended``),
  trying the disk again after ``RETRY_AFTER`` seconds.

A value is taken out of memory only once its file is written: a write that fails loses
nothing.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, MutableMapping
from typing import Any

from .memory import format_bytes
from .sizeof import sizeof
from .spill import DiskMapping, SpillSerializationError, ValueTooLarge
from .workspace import PREFIX, Workspace, claim, remove_abandoned

log = logging.getLogger("dist.worker")

RETRY_AFTER = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between tries of a disk that failed
_ABSENT = object()


class DataStore(MutableMapping):
    def __init__(self, target: float | None = None, directory: str | None = None,
                 max_spill: int | None = None, size_hint: Callable[[str], int | None]
                 = lambda key: None, clock: Callable[[], float] = time.monotonic,
                 spill_compression: str = "lz4"):
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
        self._size_hint = size_hint
        self.target = target
        # The values in memory that may spill, the least recently used first (a dict keeps
        # the order keys went in; a use moves its key to the end), what they weigh, and
        # those heavier than the target alone, which spill before any other.
        self._lru: dict[str, Any] = {}
        self._lru_weight = 0
        self._heavy: dict[str, None] = {}
        self.pinned: dict[str, Any] = {}  # kept in memory whatever the target: see above
        self._pinned_weight = 0
        self.spill_error: str | None = None  # why spilling is suspended, if it is
        self._clock = clock
        self._retry_at = 0.0
        self._failures = 0
        self.spilled_count = 0

    # -- sizes --------------------------------------------------------------------------------
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

    @property
    def managed(self) -> int:
        """Bytes of the values held in memory (estimated)."""
        return self._lru_weight + self._pinned_weight

    @property
    def spilled(self) -> int:
        """Bytes the values on disk would take in memory (estimated)."""
        return sum(self.weights[k] for k in self.slow)

    @property
    def spilled_disk(self) -> int:
        """Bytes of spill files on disk (compressed; values read back keep theirs)."""
        return self.slow.disk_bytes

    @property
    def spill_suspended(self) -> bool:
        return self.spill_error is not None

    def in_memory(self, key: str) -> bool:
        return key in self._lru or key in self.pinned

    # -- the mapping ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        lru = self._lru
        value = lru.pop(key, _ABSENT)
        if value is not _ABSENT:
            lru[key] = value  # the most recently used now
            return value
        value = self.pinned.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        if key not in self.slow:
            raise KeyError(key)
        known = self.weights.get(key)
        if known is not None and known <= self._target:
            # It comes back into memory: make room for it first, or the process holds the
            # whole target and this value too while it is read.
            self._make_room(known)
        value = self.slow[key]
        weight = self._weight(key, value)
        if weight <= self._target:
            # Back in memory as the most recently used; its file stays (``cached``) should
            # it be evicted again unchanged.
            self._keep(key, value, weight)
            del self.slow[key]
            self.spill_to_target()
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            self._discard(key)
        self.weights.pop(key, None)
        self._keep(key, value, self._weight(key, value))
        self.spill_to_target()

    def _keep(self, key: str, value: Any, weight: int) -> None:
        self._lru[key] = value
        self._lru_weight += weight
        if weight > self._target:
            self._heavy[key] = None

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._discard(key)

    def _discard(self, key: str) -> None:
        if self._lru.pop(key, _ABSENT) is not _ABSENT:
            self._lru_weight -= self.weights[key]
            self._heavy.pop(key, None)
        elif self.pinned.pop(key, _ABSENT) is not _ABSENT:
            self._pinned_weight -= self.weights[key]
        self.slow.forget(key)
        self.weights.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._lru or key in self.pinned or key in self.slow

    def __iter__(self) -> Iterator[str]:
        yield from self.pinned
        yield from self._lru
        yield from self.slow

    def __len__(self) -> int:
        return len(self.pinned) + len(self._lru) + len(self.slow)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        """Remove ``key`` without reading it back from disk (the value is not returned when
        it was only on disk: nobody freeing a key wants it loaded first)."""
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        value = self._lru.get(key, _ABSENT)
        if value is _ABSENT:
            value = self.pinned.get(key)
        self._discard(key)
        return value

    def clear(self) -> None:
        for key in list(self):
            self._discard(key)

    def payload(self, key: str):
        """The serialized value of ``key`` when it is on disk only (serving it to a peer or
        client then needs no unpickling and no memory for the value), else ``None``."""
        if key in self.slow:
            return self.slow.read(key)
        return None

    # -- spilling -------------------------------------------------------------------------------
    def check_directory(self) -> bool:
        """Try the spill directory now (at start), so a bad one is reported before the first
        spill needs it; spilling is suspended (and retried) when it does not work."""
        try:
            self.slow.probe()
        except OSError as exc:
            self._suspend(f"{type(exc).__name__}: {exc}")
            return False
        return True

    def evict(self, keep: Collection[str] = ()) -> int:
        """Spill the least recently used value not in ``keep``; its estimated bytes (0:
        nothing spilled). A running task's inputs are kept: spilling them frees nothing."""
        if not self._lru or not self._may_spill():
            return 0

        def spill_one() -> int:  # chosen again after a value that cannot spill is pinned
            if keep:
                key = next((k for k in self._lru if k not in keep), None)
            else:
                key = next(iter(self._heavy or self._lru), None)
            return 0 if key is None else self._spill(key)

        return self._guarded(spill_one) or 0

    def spill_to_target(self) -> None:
        """Spill until the values in memory weigh no more than the target."""
        if self._lru_weight + self._pinned_weight > self._target and self._may_spill():
            self._guarded(self._spill_until_below_target)

    def _spill_until_below_target(self, room: int = 0) -> None:
        while self._lru and self._lru_weight + self._pinned_weight + room > self._target:
            self._spill(next(iter(self._heavy or self._lru)))

    def _make_room(self, weight: int) -> None:
        """Spill until ``weight`` more bytes in memory stay within the target."""
        if self._lru_weight + self._pinned_weight + weight > self._target and self._may_spill():
            self._guarded(lambda: self._spill_until_below_target(weight))

    def _spill(self, key: str) -> int:
        """Write ``key``'s value to disk, then let go of it in memory; its weight."""
        self.slow[key] = self._lru[key]  # raises, and nothing changes, when it cannot
        del self._lru[key]
        self._heavy.pop(key, None)
        weight = self.weights[key]
        self._lru_weight -= weight
        return weight

    def _may_spill(self) -> bool:
        if self.spill_error is None:
            return True
        if self._clock() < self._retry_at:
            return False
        self.spill_error = None  # time to try the disk again
        return True

    def _guarded(self, action: Callable[[], Any]) -> Any:
        """Spill, and deal with what spilling can raise. No value is ever lost: a value
        leaves memory only once its write has succeeded."""
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
                self._suspend(f"{type(exc).__name__}: {exc}")
                return None
            self._spilled(before)
            if self._failures:
                log.warning("spilling to %s works again", self.directory)
                self._failures = 0
            return result
        return None

    def _spilled(self, before: int) -> None:
        self.spilled_count += max(0, len(self.slow) - before)

    def _pin(self, key: str, reason: str) -> None:
        value = self._lru.pop(key)  # out of the order of use, so no eviction tries it again
        self._heavy.pop(key, None)
        weight = self.weights.get(key, 0)
        self._lru_weight -= weight
        self.pinned[key] = value
        self._pinned_weight += weight  # still counts towards the target: others spill sooner
        log.warning("keeping %s (%s) in memory: %s", key, format_bytes(weight), reason)

    def _suspend(self, reason: str) -> None:
        delay = RETRY_AFTER[min(self._failures, len(RETRY_AFTER) - 1)]
        self._failures += 1
        self._retry_at = self._clock() + delay
        if self.spill_error is None and self._failures == 1:
            log.warning("cannot spill to %s (%s): keeping values in memory and pausing when "
                        "memory runs short; trying again in %g s", self.directory, reason, delay)
        self.spill_error = reason

    def close(self) -> None:
        """Delete every spill file, and the directory this store made."""
        self.slow.close()
        self._workspace.remove()
