"""The worker's limit on open files, put back when a task lowers it.

Every connection, listening socket and spill file takes a descriptor. A task that lowers the
process's soft limit (``resource.setrlimit(RLIMIT_NOFILE, (20, hard))``, to test its own
code's behaviour, say) below what the worker holds left it unable to accept a peer or a
client, connect to one, or spill, for the rest of its life, while the connections it had went
on as if nothing were wrong. The limit the worker started with is put back at each heartbeat:
one ``getrlimit`` every interval, nothing per task. A hard limit lowered too cannot be raised
again by an unprivileged process: then the worker says so, once.
"""
from __future__ import annotations

import logging

try:
    import resource
except ImportError:  # Windows: no such limit
    resource = None  # type: ignore[assignment]

log = logging.getLogger("dist.worker")


class OpenFileLimit:
    """The soft limit on open files as it was when made (after ``raise_open_file_limit``)."""

    def __init__(self) -> None:
        self.kept = resource.getrlimit(resource.RLIMIT_NOFILE)[0] if resource else None
        self._stuck_at: int | None = None  # a lowered limit that could not be put back

    def put_back(self) -> None:
        """Put back the kept soft limit if a task lowered it."""
        if self.kept is None:
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        infinite = resource.RLIM_INFINITY
        if soft == infinite or (self.kept != infinite and soft >= self.kept):
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.kept, hard))
        except (ValueError, OSError) as exc:
            if self._stuck_at != soft:
                self._stuck_at = soft
                log.warning("the limit on open files was lowered to %d (a task's "
                            "resource.setrlimit?) and cannot be put back to %d: %s", soft,
                            self.kept, exc)
            return
        log.warning("the limit on open files was lowered to %d (a task's resource.setrlimit?): "
                    "put back to %d", soft, self.kept)


__all__ = ["OpenFileLimit"]
