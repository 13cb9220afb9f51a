"""When the client's I/O thread wakes to send the releases that user threads queued.

A Future dropped in a user thread queues a release; nobody waits on it, so it travels with
that thread's next message to the center (a submit, say) or, failing that, with the I/O
thread's timer. The timer is armed on a wake-up the I/O thread has anyway (news from the
center), which is when callers read values and drop their Futures. No I/O here: the client's
core asks ``arm`` what to do and reports each firing to ``fired``.

Why the delay grows: in a loop of ``submit(...).result()`` every release goes with the next
submit, and a timer armed on each piece of news woke the I/O thread every few round trips with
nothing to send. Each firing that finds nothing doubles the delay, up to ``LONGEST``; one that
finds releases to send sets it back to ``SHORTEST``, so a client that drops Futures and then
idles has them sent within ``SHORTEST`` again after the first one.
"""
from __future__ import annotations

SHORTEST = 0.005  # seconds a release waits for a message to go with, at first
LONGEST = 0.08  # ... and at most, once the timer keeps finding nothing to send


class ReleaseTimer:
    def __init__(self) -> None:
        self.armed = False
        self.delay = SHORTEST

    def arm(self) -> float | None:
        """The delay to arm the timer with, or None when it is armed already."""
        if self.armed:
            return None
        self.armed = True
        return self.delay

    def disarm(self) -> None:
        """The timer went off: the next release arms it again."""
        self.armed = False

    def fired(self, releases_waiting: bool) -> None:
        """The timer went off; ``releases_waiting``: it found releases that no message took."""
        self.armed = False
        self.delay = SHORTEST if releases_waiting else min(self.delay * 2, LONGEST)
