"""Whether the spill disk takes values now: a failed write suspends spilling for a while.

A disk that fails (full, read-only, removed) *suspends* spilling: everything stays in memory,
and the worker's monitor pauses the worker instead, while ``error`` says why. The disk is
tried again after ``RETRY_AFTER`` seconds, longer after each failure in a row; the first
value written again ends the suspension. The failure is logged once, not at every try.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("dist.worker")

RETRY_AFTER = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between tries of a disk that failed


class SpillHealth:
    """The suspension of spilling to ``directory``, on the clock given: ``suspend`` when a
    write fails, ``works_again`` when one succeeds."""

    __slots__ = ("directory", "clock", "error", "_retry_at", "_failures")

    def __init__(self, directory: str, clock: Callable[[], float]):
        self.directory = directory
        self.clock = clock
        # Why spilling is suspended, if it is. It stays while the disk is tried again, until
        # a value is written: it is what the worker reports, and a report that came and went
        # with each try told the center and the client "it spills again" every few seconds
        # of a full disk.
        self.error: str | None = None
        self._retry_at = 0.0
        self._failures = 0

    def may_spill(self) -> bool:
        """Spilling is not suspended, or it is time to try the disk again."""
        return self.error is None or self.clock() >= self._retry_at

    def retry_due(self) -> bool:
        """Spilling is suspended, and it is time to try the disk again."""
        return self.error is not None and self.clock() >= self._retry_at

    def works_again(self) -> None:
        """A value was written: the disk takes values again."""
        if self._failures:
            log.warning("spilling to %s works again", self.directory)
            self._failures = 0
        self.error = None

    def suspend(self, reason: str) -> None:
        """A write failed for ``reason``: no spilling until the next try is due."""
        delay = RETRY_AFTER[min(self._failures, len(RETRY_AFTER) - 1)]
        self._failures += 1
        self._retry_at = self.clock() + delay
        if self._failures == 1:
            log.warning("cannot spill to %s (%s): keeping values in memory and pausing when "
                        "memory runs short; trying again in %g s", self.directory, reason, delay)
        self.error = reason
