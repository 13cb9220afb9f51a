"""Which functions run on the event loop's own thread rather than on a pool thread, from how
their last runs went (``InlinePolicy``). Pure bookkeeping: it runs nothing itself.
"""
from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable
from typing import Any

from dist_protocol.messages import TaskErred
from dist_protocol.serialize import Payload


def _thread_waits_reader() -> Callable[[], int | None]:
    try:
        from resource import RUSAGE_THREAD, getrusage
    except ImportError:  # RUSAGE_THREAD is Linux's
        return lambda: None
    return lambda: getrusage(RUSAGE_THREAD).ru_nvcsw


# How many times the calling thread has waited (voluntary context switches: on a lock, a
# socket, a sleep), or None where the system does not say.
thread_waits = _thread_waits_reader()


class InlinePolicy:
    """Which functions may run on the event loop's own thread.

    Handing a task to a pool thread and back costs two thread wake-ups (~100 us here), more
    than a trivial task itself. A function that ran in under ``FAST`` seconds its last
    ``NEEDED`` times runs inline. A run over ``SLOW`` seconds sends it back to the pool, where
    it must prove itself fast again; ``STRIKES`` such runs on the loop within ``WINDOW`` runs
    of any function bar it for good, so a function that can block stays on the pool where it
    cannot stall the loop (while a run stalls it, ``StallWatch`` keeps the worker's heartbeats
    going from a thread of its own). One slow run alone does not bar it, nor do slow runs on
    the pool (they stall nothing): on a busy machine a trivial function is now and then
    preempted, or waits for the GIL, for longer than ``SLOW``, and barring it for that would
    send every later run of it through the pool. But no preemption lasts ``STALLED``
    seconds: a run on the loop that long blocked, and bars its function at once, rather than
    after two more such stalls (peers and clients asking the worker for data wait through
    each). Where the system counts a thread's waits (``thread_waits``), a slow run is a
    strike only if the loop's thread waited during it: one taken off the CPU without
    waiting was preempted, not blocked, and on a loaded machine three such runs fall within
    ``WINDOW`` sooner or later in a long map, which then went through the pool to its end.
    """

    FAST = 0.0002
    SLOW = 0.005
    NEEDED = 8
    STRIKES = 3
    STALLED = 1.0
    WINDOW = 1000
    BUDGET = 0.002  # seconds of inline work per pass of the event loop
    LARGEST_KEYED = 2**20  # bytes of a function's pickle: past that, never run on the loop
    TOO_LARGE_TO_KEY = ("pickle too large to key",)  # the key of all those, never recorded
    _BARRED = -1

    def __init__(self, max_functions: int = 1024,
                 waits: Callable[[], int | None] = thread_waits):
        self._waits = waits
        self._waits_before: int | None = None  # the loop thread's, as its inline runs began
        self._fast_runs: collections.OrderedDict[Any, int] = collections.OrderedDict()
        self._slow_runs: dict[Any, collections.deque[int]] = {}  # key -> run numbers
        self._runs = 0  # runs recorded, of all functions
        self._last_function: Payload | None = None  # the pickled function keyed last, its key
        self._last_key: Any = None
        self._max = max_functions

    def function_key(self, function: str | Payload, key: str = "") -> Any:
        """What the policy tells functions apart by: the function's name or pickle; for a
        task of a dask collection (a tuple key, ``"('getitem-<token>', 3, 5)"``), the layer
        its key names. Such a task's pickle is the whole graph node, its key and inputs
        included, so no two are alike: keyed by their pickles, the 400 one-line splits of a
        shuffle would each run through the pool, never proven fast. The tasks of one layer
        apply one function to one partition each."""
        if isinstance(function, str):
            return function
        if key.startswith(("('", '("')):
            return ("layer", key[2:].split(key[1], 1)[0])
        if function is not self._last_function:
            # A map's tasks share one payload: its bytes made (and hashed, by the look-ups
            # that follow) once, not once per task. A large one (a literal of a gigabyte in a
            # dask graph is such a task's whole pickle) is neither copied nor hashed: that
            # held the loop for 8-12 s, past the center's heartbeat limit, and a task that
            # large would stall the loop as long unpickling it there. It runs on the pool.
            # Keyed by a digest, not a copy: the policy remembers 1,024 functions, which a
            # client submitting a new closure of a megabyte each time made a gigabyte.
            first = function.frames[0]
            self._last_function = function
            self._last_key = (self.TOO_LARGE_TO_KEY if len(first) > self.LARGEST_KEYED
                              else hashlib.blake2b(first, digest_size=16).digest())
        return self._last_key

    def allows(self, function_key: Any) -> bool:
        return self._fast_runs.get(function_key, 0) >= self.NEEDED

    def stretch_begins(self) -> None:
        """Runs on the loop begin (a stretch of them, once a pass of the loop), on its own
        thread: how often that thread has waited so far is noted (one system call a
        stretch, none a run), so that a slow run can be told blocked from preempted."""
        self._waits_before = self._waits()

    def _waited(self) -> bool:
        """Whether the loop's thread waited since its stretch of inline runs began or since
        the last slow run; True when that is not known."""
        before = self._waits_before
        if before is None:
            return True
        now = self._waits_before = self._waits()
        return now is None or now != before

    def bar(self, function_key: Any) -> None:
        """Never run this function on the loop again (it waits on the cluster)."""
        self._fast_runs[function_key] = self._BARRED
        self._fast_runs.move_to_end(function_key)
        self._slow_runs.pop(function_key, None)

    def record(self, function_key: Any, duration: float, inline: bool = True) -> None:
        """A run of ``duration`` seconds, on the loop (``inline``) or on a pool thread."""
        self._runs += 1
        if function_key is self.TOO_LARGE_TO_KEY:
            return
        runs = self._fast_runs.get(function_key, 0)
        if runs == self.NEEDED and duration < self.FAST:
            # (proven fast and fast again, as a map's runs are: only its place in the order of
            # use changes)
            self._fast_runs.move_to_end(function_key)
            return
        if runs == self._BARRED:
            return
        if duration < self.FAST:
            runs = min(runs + 1, self.NEEDED)
        elif duration > self.SLOW and inline and (duration > self.STALLED or (
                self._waited() and self._strike(function_key))):
            self._slow_runs.pop(function_key, None)
            runs = self._BARRED
        else:
            runs = 0
        self._fast_runs[function_key] = runs
        self._fast_runs.move_to_end(function_key)
        if len(self._fast_runs) > self._max:
            forgotten, _ = self._fast_runs.popitem(last=False)
            self._slow_runs.pop(forgotten, None)

    def record_failed(self, function_key: Any, error: TaskErred, inline: bool = True) -> None:
        """A run that raised. One that blocked on the loop and then raised (a timeout waiting
        on a service, say) stalled it as long as one that blocked and returned: it counts as
        slow. Not as fast, though: what raising costs the loop past the run (the traceback,
        the exception pickled) is not in its times. (A task that could not be loaded never
        ran: no times.)"""
        if (error.start is not None and error.stop is not None
                and error.stop - error.start >= self.FAST):
            self.record(function_key, error.stop - error.start, inline)

    def _strike(self, function_key: Any) -> bool:
        """A slow run of ``function_key``: whether it is its last chance gone."""
        slow = self._slow_runs.get(function_key)
        if slow is None:
            slow = self._slow_runs[function_key] = collections.deque(maxlen=self.STRIKES)
        slow.append(self._runs)
        if len(slow) == self.STRIKES and self._runs - slow[0] < self.WINDOW:
            del self._slow_runs[function_key]
            return True
        return False
