"""The newest log lines of a center or worker process, kept in memory for clients that ask
(dask's ``get_worker_logs``/``get_scheduler_logs``). No I/O: a bounded ``logging`` handler on
the root logger (the ``dist`` loggers' lines and the tasks' own), installed by the ``dcenter``
and ``dworker`` commands once they configured logging. Never by a server made inside a
user's program: a handler on the root logger would silence Python's last-resort output
there and turn the user's later ``logging.basicConfig()`` into nothing.
"""
from __future__ import annotations

import collections
import logging
import threading

LINES = 10_000  # kept per process (dask's ``distributed.admin.log-length``)


class RecentLines(logging.Handler):
    def __init__(self, length: int = LINES) -> None:
        super().__init__(logging.NOTSET)
        self.lines: collections.deque[tuple[str, str]] = collections.deque(maxlen=length)
        self.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - "
                                            "%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append((record.levelname, self.format(record)))
        except Exception:  # noqa: BLE001 -- a record that cannot be formatted is left out
            self.handleError(record)

    def newest(self, n: int | None = None) -> list[list[str]]:
        """The newest ``n`` lines (all when None), oldest first, as ``[level, line]``."""
        lines = list(self.lines)
        if n is not None:
            lines = lines[-n:] if n else []
        return [[level, line] for level, line in lines]


_installed: RecentLines | None = None
_lock = threading.Lock()


def newest(n: int | None = None) -> list[list[str]]:
    """The process's newest ``n`` lines (``RecentLines.newest``); none where nothing was
    installed."""
    return _installed.newest(n) if _installed is not None else []


def install() -> RecentLines:
    """The process's handler, on the root logger (so that it sees ``dist.*`` and what the
    tasks log through ``logging``), made at the first call."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = RecentLines()
            logging.getLogger().addHandler(_installed)
        return _installed


__all__ = ["LINES", "RecentLines", "install", "newest"]
