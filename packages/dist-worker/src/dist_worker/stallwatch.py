"""Keeping a worker alive towards its center while a task runs long on the event loop's thread.

A function proven fast runs on the loop's own thread (``InlinePolicy``), but a fast function
may still block on some input. While it does, the loop sends nothing, and the center would
take the silent worker for dead: drop it, its results, and the tasks it holds. ``StallWatch``
is a thread that looks, once an interval while tasks run inline, whether the same inline run
is still going as at its last look; if so, it calls ``beat`` (which writes a heartbeat from
this thread) once an interval until that run ends. Idle, or while tasks run on the pool, the
thread waits without waking.

The loop's side is two attribute writes per task (``running``, ``runs``) and an ``arm`` per
row of inline tasks, so that the inline speed-up stays.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("dist.worker")


class Looks:
    """What the watch makes of its looks, one an interval, at the loop's ``running`` and
    ``runs``: how many whole intervals the inline run under way has gone on through (0: none,
    or no run is under way)."""

    def __init__(self) -> None:
        self._looked_at = -1  # the run seen at the last look
        self._looks = 0

    def look(self, running: str | None, runs: int) -> int:
        if running is None or runs != self._looked_at:
            self._looked_at, self._looks = (-1 if running is None else runs), 0
            return 0
        self._looks += 1
        return self._looks


class StallWatch:
    """``beat(key, looks)``: the inline run of ``key`` has gone on through ``looks`` whole
    intervals; called on the watch's thread, once an interval, until the run ends."""

    def __init__(self, interval: float, beat: Callable[[str, int], None]):
        self.interval = interval
        self.beat = beat
        # Written by the loop's thread only: the key of the task running inline (None between
        # rows of inline tasks), and how many inline runs began.
        self.running: str | None = None
        self.runs = 0
        self._armed = threading.Event()  # inline runs may be under way: look
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        """On the loop's thread, after setting ``running`` for a row of inline tasks."""
        if not self._armed.is_set():
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="dist-stall-watch",
                                                daemon=True)
                self._thread.start()
            self._armed.set()

    def close(self) -> None:
        self._closed.set()
        self._armed.set()

    def _watch(self) -> None:
        while True:
            self._armed.wait()
            looks = Looks()
            while not self._closed.wait(self.interval):
                key = self.running
                if key is None:
                    self._armed.clear()
                    # The loop sets ``running`` before it arms: a row that began after the
                    # look above is seen here, or re-arms the watch itself.
                    if self.running is None:
                        break
                    self._armed.set()
                    continue
                stalled = looks.look(key, self.runs)
                if stalled:
                    try:
                        self.beat(key, stalled)
                    except Exception:  # the watch must outlive whatever a beat ran into
                        log.exception("keeping the worker alive during inline task %s", key)
            if self._closed.is_set():
                return
