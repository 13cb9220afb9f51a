"""How a worker without a center tells the operator, and when it gives up (no I/O)."""
from __future__ import annotations

import logging
import time

log = logging.getLogger("dist.worker")

CENTER_WARN_EVERY = 10.0  # seconds between warnings while the center cannot be reached


class CenterOutage:
    """One period without a center: when to warn about it and when to give up (no I/O)."""

    def __init__(self, address: str, timeout: float | None, clock=time.monotonic):
        self.address = address
        self.timeout = timeout
        self.clock = clock
        self.since = clock()
        self.attempts = 0
        self.last_error = ""
        self._next_warning = self.since

    def failed(self, error: str) -> None:
        """An attempt failed: warn at the first and then every ``CENTER_WARN_EVERY`` s."""
        self.attempts += 1
        self.last_error = error
        now = self.clock()
        if now < self._next_warning:
            return
        self._next_warning = now + CENTER_WARN_EVERY
        if self.attempts == 1:
            log.warning("cannot reach the center at %s: %s; retrying%s", self.address, error,
                        self._until())
        else:
            log.warning("still cannot reach the center at %s after %.0f s (%d attempts): %s; "
                        "retrying%s", self.address, now - self.since, self.attempts, error,
                        self._until())

    def _until(self) -> str:
        if self.timeout is None:
            return ""
        return f" (giving up {self.remaining():.0f} s from now)"

    def remaining(self) -> float:
        """Seconds until giving up (infinite without a timeout)."""
        if self.timeout is None:
            return float("inf")
        return max(0.0, self.since + self.timeout - self.clock())

    def expired(self) -> bool:
        return self.timeout is not None and self.clock() - self.since >= self.timeout

    def give_up_message(self) -> str:
        return (f"giving up: no center at {self.address} for {self.clock() - self.since:.0f} s "
                f"({self.attempts} attempts; last error: {self.last_error or 'none'})")
