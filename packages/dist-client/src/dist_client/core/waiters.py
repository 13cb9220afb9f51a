"""The one way to wait until keys settle, for threads and for event loops alike.

A waiter watches some keys: it registers one callback per key with ``KeyState.watch`` and
re-checks its condition each time one settles (again, too, after a lost result is computed
anew). ``wait``, ``as_completed``, ``progress``,
``Future.result`` and ``await future`` are all built on it.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from .keystate import KeyState


class ThreadWaiter:
    """Wakes a blocked thread whenever one of the watched keys settles; used as a context
    manager, so the keys forget it afterwards."""

    def __init__(self, states: Iterable[KeyState]):
        self._changed = threading.Event()
        # One bound method for every key: made per key, it was one more object a key
        # waited for (``wait`` on a long map's futures) for the cyclic collector to walk.
        self._wake = self._changed.set
        self._states = list(states)
        for state in self._states:
            state.watch(self._wake)

    def until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``condition()`` holds (checked again after each settling); False if
        ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not condition():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._changed.wait(left)
            self._changed.clear()
        return True

    def __enter__(self) -> ThreadWaiter:
        return self

    def __exit__(self, *exc_info) -> None:
        for state in self._states:
            state.unwatch(self._wake)


class LoopWaiter:
    """Wakes a coroutine on the running event loop whenever one of the watched keys settles
    (keys settle on another thread: the wake-up crosses with ``call_soon_threadsafe``)."""

    def __init__(self, states: Iterable[KeyState]):
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        # Woken since the coroutine last looked: the keys that settle meanwhile (a gather's
        # settle one after the other) wake it no further, and cost no call each.
        self._woken = False
        self._states = list(states)
        wake = self._wake  # (one bound method for every key, as ``ThreadWaiter``'s)
        for state in self._states:
            state.watch(wake)

    def _wake(self) -> None:
        if self._woken:
            return
        self._woken = True
        if self._in_loop():
            self._changed.set()
            return
        try:
            self._loop.call_soon_threadsafe(self._changed.set)
        except RuntimeError:
            pass  # that loop is closed: nobody waits there any more

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds (checked again after each settling); bound it
        with ``asyncio.wait_for``."""
        try:
            while not condition():
                await self._woken_up()
        finally:
            wake = self._wake
            for state in self._states:
                state.unwatch(wake)

    async def until_all_done(self, all_done: AllDone | AllDoneOrOneFailed) -> None:
        """``until`` for a condition that scans its keys in order (built with no keys of
        its own to watch): only the key its scan stopped at is watched, and, for
        ``AllDoneOrOneFailed``, the failure of any key. Watching each of a gather's keys
        (a map's: every one pending) cost a list of watchers a key, kept until the last
        key settled, for the cyclic collector's full passes to walk, and a call into each
        key at its settling."""
        wake = self._wake
        failures = type(all_done) is AllDoneOrOneFailed
        if failures:
            KeyState.watch_failures(wake)
        try:
            while not all_done():
                state = all_done.stopped_at()
                state.watch(wake)
                try:
                    if state.status == "pending":  # (else it settled before it was watched)
                        await self._woken_up()
                finally:
                    state.unwatch(wake)
        finally:
            if failures:
                KeyState.unwatch_failures(wake)

    async def _woken_up(self) -> None:
        await self._changed.wait()
        # (before the next look: a key settling from here on wakes it again)
        self._woken = False
        self._changed.clear()


class AllDone:
    """``all(state.done for state in states)`` at a cost that does not grow with the keys
    already settled: each check resumes at the first key the previous one found pending (keys
    mostly settle in the order they were submitted), so waiting for a million keys is not a
    million checks of a million keys. Once the scan reaches the end, the whole list is checked
    once more, since a settled key whose result was lost meanwhile is pending again."""

    __slots__ = ("_states", "_first_pending")

    def __init__(self, states: Sequence[KeyState]):
        self._states = states
        self._first_pending = 0

    def __call__(self) -> bool:
        states, start = self._states, self._first_pending
        end = len(states)
        at = start
        # (the status read, not ``done``: a property's call per key looked at)
        while at < end and states[at].status != "pending":
            at += 1
        if at < end:
            self._first_pending = at
            return False
        if start == 0:  # this scan saw every key done
            return True
        self._first_pending = 0
        return self()

    def stopped_at(self) -> KeyState:
        """The pending key the last check found first (after it returned False)."""
        return self._states[self._first_pending]


class AllDoneOrOneFailed:
    """Whether every one of ``states`` is done or one of them has failed (an error, lost,
    cancelled), as dask's ``gather`` stops at the first failure. Without failures it costs
    what ``AllDone`` does: the keys are looked through only after some key has failed."""

    __slots__ = ("_states", "_all_done", "_failures_seen")

    def __init__(self, states: Sequence[KeyState]):
        self._states = states
        self._all_done = AllDone(states)
        self._failures_seen = -1

    def __call__(self) -> bool:
        if self._all_done():
            return True
        failures = KeyState.failures
        if failures == self._failures_seen:
            return False
        self._failures_seen = failures
        return any(state.status not in ("pending", "finished") for state in self._states)

    def stopped_at(self) -> KeyState:
        return self._all_done.stopped_at()


async def settled_or_failed_async(states: list[KeyState]) -> None:
    """Return on the running loop once every one of ``states`` is done or one has failed."""
    enough = AllDoneOrOneFailed(states)
    if not enough():
        await LoopWaiter(()).until_all_done(enough)


def settled(states: list[KeyState], timeout: float | None = None) -> bool:
    """Block this thread until every one of ``states`` is done; False on timeout."""
    all_done = AllDone(states)
    if all_done():
        return True
    if len(states) == 1:
        return one_settled(states[0], timeout)
    with ThreadWaiter(states) as waiter:
        return waiter.until(all_done, timeout)


def one_settled(state: KeyState, timeout: float | None = None) -> bool:
    """``settled`` for one key (``Future.result``): the thread sleeps on a plain lock that
    the key's settling releases -- one futex wake-up from the I/O thread, and no condition
    variable, event or watcher list to build and take down per call."""
    deadline = None if timeout is None else time.monotonic() + timeout
    # (the status read, not ``done``: a property's call; and read again if the key settled
    # and went back to pending: recomputed)
    while state.status == "pending":
        woken = threading.Lock()
        woken.acquire()
        state.on_done(woken.release)  # released at once, here, if it settled meanwhile
        left = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not woken.acquire(timeout=left):
            state.forget(woken.release)
            return state.status != "pending"
    return True


async def settled_async(states: list[KeyState]) -> None:
    """Return on the running loop once every one of ``states`` is done."""
    all_done = AllDone(states)
    if not all_done():
        await LoopWaiter(()).until_all_done(all_done)


__all__ = ["AllDone", "AllDoneOrOneFailed", "LoopWaiter", "ThreadWaiter", "one_settled",
           "settled", "settled_async", "settled_or_failed_async"]
