"""The values a worker holds, in memory up to a target and on disk beyond it.

``DataStore`` is the mapping ``WorkerState.data`` is: reads, writes and deletes look like a
dict's, and a value on disk is read back transparently. Underneath is ``zict.Buffer``, the
mapping dask's workers spill with: an LRU of in-memory values weighed by their estimated size
over the ``DiskMapping`` of ``spill.py``. Once the values in memory weigh more than the target,
the least recently used go to disk (the heaviest first when one alone is over the target).

What cannot go to disk stays in memory and is reported once, never retried in a loop:

* a value that cannot be pickled, or one larger than the disk could ever hold, is *pinned*:
  kept in memory, outside the LRU, until it is freed;
* a disk that fails (full, read-only, removed) *suspends* spilling for a while; everything
  stays in memory, and the worker's monitor pauses the worker instead (``spill_suspended``),
  trying the disk again after ``RETRY_AFTER`` seconds.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, MutableMapping
from typing import Any

import zict

from .memory import format_bytes
from .sizeof import sizeof
from .spill import DiskMapping, SpillSerializationError, ValueTooLarge

log = logging.getLogger("dist.worker")

RETRY_AFTER = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between tries of a disk that failed


class DataStore(MutableMapping):
    def __init__(self, target: float | None = None, directory: str | None = None,
                 max_spill: int | None = None, size_hint: Callable[[str], int | None]
                 = lambda key: None, clock: Callable[[], float] = time.monotonic,
                 spill_compression: str = "lz4"):
        self._own_directory = directory is None
        if directory is None:
            directory = tempfile.mkdtemp(prefix="dist-worker-")
        else:
            directory = os.path.join(directory, f"dist-worker-{os.getpid()}")
            self._own_directory = True
        self.directory = directory
        self.slow = DiskMapping(directory, max_spill, spill_compression)
        self.weights: dict[str, int] = {}  # key -> estimated bytes in memory, every key held
        self._size_hint = size_hint
        self.buffer = zict.Buffer({}, self.slow, n=float("inf") if target is None else target,
                                  weight=self._weight)
        # The in-memory LRU's own dict: asked whether it holds a key on every look-up of a
        # task's inputs and results, which then costs one dict look-up, not three calls.
        self._memory: MutableMapping[str, Any] = self.buffer.fast.d
        self.pinned: dict[str, Any] = {}  # kept in memory whatever the target: see above
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
        return self.buffer.n

    @target.setter
    def target(self, value: float | None) -> None:
        self.buffer.n = float("inf") if value is None else value

    @property
    def managed(self) -> int:
        """Bytes of the values held in memory (estimated)."""
        return int(self.buffer.fast.total_weight + self.buffer.offset)

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
        return key in self._memory or key in self.pinned

    # -- the mapping ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in self.pinned:
            return self.pinned[key]
        fast = self.buffer.fast
        if key in fast:
            return fast[key]  # marks it recently used
        value = self.slow[key]  # KeyError when not held at all
        if self._weight(key, value) <= self.buffer.n:
            # Back in memory as the most recently used; its file stays (``cached``) should
            # it be evicted again unchanged.
            fast.set_noevict(key, value)
            del self.slow[key]
            self.spill_to_target()
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            self._discard(key)
        self.weights.pop(key, None)
        self.buffer.set_noevict(key, value)
        self.spill_to_target()

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._discard(key)

    def _discard(self, key: str) -> None:
        if self.pinned.pop(key, None) is None:
            del self.buffer[key]
        else:
            self.buffer.offset -= self.weights[key]
        self.slow.forget(key)
        self.weights.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._memory or key in self.pinned or key in self.slow

    def __iter__(self) -> Iterator[str]:
        yield from self.pinned
        yield from self.buffer

    def __len__(self) -> int:
        return len(self.pinned) + len(self.buffer)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        """Remove ``key`` without reading it back from disk (the value is not returned when
        it was only on disk: nobody freeing a key wants it loaded first)."""
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        value = self.pinned.get(key, self.buffer.fast.d.get(key))
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
        fast = self.buffer.fast
        if not len(fast) or not self._may_spill():
            return 0
        if not keep:
            result = self._guarded(fast.evict)
        else:
            def evict_one() -> tuple[Any, Any, float]:
                key = next((k for k in fast.order if k not in keep), None)
                return (None, None, 0.0) if key is None else fast.evict(key)
            result = self._guarded(evict_one)
        return 0 if result is None else int(result[2])

    def spill_to_target(self) -> None:
        """Spill until the values in memory weigh no more than the target."""
        fast = self.buffer.fast
        if fast.total_weight > fast.n and self._may_spill():
            self._guarded(self.buffer.evict_until_below_target)

    def _may_spill(self) -> bool:
        if self.spill_error is None:
            return True
        if self._clock() < self._retry_at:
            return False
        self.spill_error = None  # time to try the disk again
        return True

    def _guarded(self, action: Callable[[], Any]) -> Any:
        """Spill, and deal with what spilling can raise. No value is ever lost: zict keeps a
        key in memory until its write has succeeded."""
        for _ in range(len(self.buffer.fast) + 1):
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
        value = self.buffer.fast.d[key]
        weight = self.weights.get(key, 0)
        del self.buffer[key]  # out of the LRU, so no eviction tries it again
        self.pinned[key] = value
        self.buffer.offset += weight  # still counts towards the target: others spill sooner
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
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
