"""The pool of threads that run tasks (``TaskRunner``): it hands each outcome back to the event
loop, waking it once per burst of results rather than once per task. A task may give its
thread's slot back while it waits (``secede``): the runner starts a thread in its place, and
when the task takes a slot back (``rejoin``) one thread too many retires after its task.

A run is its key and the generation it was submitted in: a restart (``forget_runs``) begins a
new one, since the worker's state forgets every task then, and a key it forgot may run again
at once while the forgotten run still goes on. What a forgotten run does reaches the state as
``ForgottenRunSeceded`` and ``ForgottenRunEnded``, never as an event of the key's new run:
keyed by key alone, two runs of one key (both seceded, say) shared one entry, and one of them
waited for ever to rejoin.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from dist_protocol import task_context
from dist_protocol.messages import TaskErred
from dist_protocol.task_context import TaskContext

from .events import (Event, Execute, ExecutionFailed, ForgottenRunEnded, ForgottenRunSeceded,
                     RejoinRequested, Seceded)
from .execution import exception_text, run_task
from .sigterm_watch import let_this_thread_take_sigterm

log = logging.getLogger("dist.worker")

# The size of the stacks of the threads the worker starts, as it began (0: the platform's).
# ``threading.stack_size`` is process-wide: a task that made it small (32 KiB) left every
# pool thread started after it -- a seceded task's replacement -- to overflow its stack at
# the next task that recursed in C (pickling a nested value): SIGSEGV, the worker gone.
_STACK_SIZE = threading.stack_size()


class TaskRunner:
    """``nthreads`` threads running ``Execute`` orders; outcomes go to ``on_done`` on the loop,
    a task's ``secede``/``rejoin`` to ``on_event``. Each task runs with the ``TaskContext``
    that ``context`` makes for its key."""

    def __init__(self, nthreads: int, loop: asyncio.AbstractEventLoop,
                 on_done: Callable[[list], None],
                 on_event: Callable[[Event], None] | None = None,
                 context: Callable[[str], TaskContext] | None = None,
                 before: Callable[[], Any] | None = None,
                 after: Callable[[str, Any], None] | None = None):
        self.loop = loop
        # On the thread, around each task: ``after(key, before())`` once it let go of its values.
        self.before = before
        self.after = after
        self.on_done = on_done
        self.on_event = on_event
        self.context = context
        self.nthreads = nthreads
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._done: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._running = 0  # threads that take tasks from the queue (seceded ones do not)
        self._closed = False
        self._thread_names = iter(range(1 << 62))
        # .seceded: this thread's task gave its slot back; .generation: the run's (see above)
        self._local = threading.local()
        self._generation = 0  # runs submitted since the last ``forget_runs`` are of this one
        self._resume: dict[str, threading.Event] = {}  # seceded tasks waiting to rejoin
        # Runs submitted whose thread (once one takes them) counts as one of the pool's, by
        # key: a seceded or replaced run's does not. Counted, not a set: a key may run again
        # (a retry, a key submitted anew) before the thread of its last run has retired, and
        # that thread must not take the new run's claim for its own, leaving the new run's
        # thread to retire as if replaced (one pool thread fewer for good).
        self._slotted: dict[str, int] = {}
        for _ in range(nthreads):
            self._start_thread()

    @property
    def threads(self) -> int:
        """Threads taking tasks (a seceded task's thread is not one until it rejoins)."""
        return self._running

    def _start_thread(self) -> None:
        with self._lock:
            self._running += 1
            name = f"dist-task-{next(self._thread_names)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        tasks_size = threading.stack_size(_STACK_SIZE)
        try:
            thread.start()
        finally:
            threading.stack_size(tasks_size)  # (the threads a task starts get what it set)

    def submit(self, instruction: Execute) -> None:
        key = instruction.key
        with self._lock:
            slotted = self._slotted
            slotted[key] = slotted.get(key, 0) + 1
            generation = self._generation
        self._queue.put((instruction, generation))

    def forget_runs(self) -> None:
        """On the loop, as the worker's state forgets every task (a restart): the runs under
        way, and those submitted and not yet started, belong to no task now. Each still holds
        its thread; the seceded ones waiting to rejoin go on at once, without a slot (nothing
        would give them one), and what they do later is reported as forgotten."""
        self._drain()  # (outcomes of runs that ended before: the state hears them first)
        with self._lock:
            self._generation += 1
            waiting, self._resume = list(self._resume.values()), {}
        for resumed in waiting:
            resumed.set()

    def _forgotten(self) -> bool:
        """Whether the run on this thread was forgotten by a restart (under ``_lock``)."""
        return getattr(self._local, "generation", self._generation) != self._generation

    def _unclaim(self, key: str) -> bool:
        """Take back one claim to a slot of ``key``'s runs (under ``_lock``); False if it
        has none left (replaced, or seceded)."""
        slotted = self._slotted
        claims = slotted.get(key, 0)
        if not claims:
            return False
        if claims == 1:
            del slotted[key]
        else:
            slotted[key] = claims - 1
        return True

    def replace_thread(self, key: str) -> None:
        """The task ``key``, freed while it runs, keeps its thread, which no longer counts
        as one of the pool's: another is started in its place (``ReplaceThread``), and the
        task's ends with the task."""
        with self._lock:
            if self._closed or not self._unclaim(key):
                return  # ended, seceded or replaced already
            self._running -= 1
            replace = self._running < self.nthreads
        if replace:
            self._start_thread()

    # -- secede and rejoin, called by a task on its own thread ------------------------------
    def secede(self, key: str) -> None:
        with self._lock:
            if getattr(self._local, "seceded", False):
                return
            self._local.seceded = True
            if not self._unclaim(key):  # replaced already: its slot is given back
                return
            self._running -= 1
            replace = not self._closed and self._running < self.nthreads
        if replace:
            self._start_thread()
        self._tell(Seceded(key), ForgottenRunSeceded(key))

    def has_seceded(self) -> bool:
        return getattr(self._local, "seceded", False)

    def rejoin(self, key: str) -> None:
        if not getattr(self._local, "seceded", False):
            return
        resumed = threading.Event()
        with self._lock:
            if self._closed:  # nothing will give it a slot now: let it finish
                self._local.seceded = False
                return
            if self._forgotten():  # nothing will give it a slot either: it goes on without
                return
            self._resume[key] = resumed
        self._tell(RejoinRequested(key), None)
        resumed.wait()
        with self._lock:
            if self._forgotten():  # let go by ``forget_runs``: still without a slot
                return
            self._local.seceded = False
            self._running += 1
            self._slotted[key] = self._slotted.get(key, 0) + 1

    def resume(self, key: str) -> None:
        """The worker gave the seceded task ``key`` a slot: its thread goes on."""
        with self._lock:
            resumed = self._resume.pop(key, None)
        if resumed is not None:
            resumed.set()

    def _tell(self, event: Event, forgotten: Event | None) -> None:
        """``event`` on the loop; ``forgotten`` instead (None: nothing) if by then a restart
        forgot the run of this thread (told apart on the loop, where ``forget_runs`` runs)."""
        if self.on_event is not None:
            generation = getattr(self._local, "generation", self._generation)
            try:
                self.loop.call_soon_threadsafe(self._deliver, event, forgotten, generation)
            except RuntimeError:
                pass  # the loop is closed: the worker is shutting down

    def _deliver(self, event: Event, forgotten: Event | None, generation: int) -> None:
        assert self.on_event is not None
        if generation == self._generation:
            self.on_event(event)
        elif forgotten is not None:
            self.on_event(forgotten)

    def _retire(self, key: str) -> bool:
        """After task ``key``: whether this thread ends (it seceded and never rejoined, it
        was replaced, or a rejoined task left one thread too many)."""
        with self._lock:
            if getattr(self._local, "seceded", False):
                self._local.seceded = False  # (its claim went when it seceded)
                return True
            if not self._unclaim(key):  # replaced: another thread took its place
                return True
            if self._running > self.nthreads:
                self._running -= 1
                return True
            return False

    def _work(self) -> None:
        let_this_thread_take_sigterm()  # (for the processes its tasks start: sigterm_watch)
        while True:
            queued = self._queue.get()
            if queued is None:
                return
            instruction, generation = queued
            self._local.generation = generation
            key = instruction.key
            # (forgotten before it started: not run; read without the lock, as a restart
            # just after is told apart by the outcome's generation all the same)
            dropped = generation != self._generation
            if dropped:
                outcome: Any = None
            else:
                if self.context is not None:
                    task_context.set_current(self.context(key))
                started = self._around(self.before)
                try:
                    outcome = run_task(instruction)
                except BaseException as exc:  # noqa: BLE001 -- a bug here must not cost the thread
                    outcome = ExecutionFailed(key, TaskErred(
                        key=key, exception_type=type(exc).__name__,
                        message=f"the worker failed running the task: {exception_text(exc)}"))
                finally:
                    task_context.set_current(None)
            with self._lock:
                wake = not self._done
                if generation != self._generation:  # (``forget_runs`` drained those before)
                    outcome = ForgottenRunEnded(key, not getattr(self._local, "seceded", False))
                self._done.append(outcome)
            if wake:
                try:
                    self.loop.call_soon_threadsafe(self._drain)
                except RuntimeError:
                    return  # the loop is closed: the worker is shutting down
            # An idle thread must not keep the last task's inputs and result alive: a worker
            # paused for memory waits for that memory to be freed, not for a next task.
            del instruction, outcome, queued
            if self.after is not None and not dropped:
                self._around(self.after, key, started)
            if self._retire(key):
                return

    @staticmethod
    def _around(hook: Callable[..., Any] | None, *args: Any) -> Any:
        if hook is None:
            return None
        try:
            return hook(*args)
        except Exception:  # housekeeping must not cost the thread
            log.exception("around a task")
            return None

    def _drain(self) -> None:
        with self._lock:
            outcomes = list(self._done)
            self._done.clear()
        if outcomes:
            self.on_done(outcomes)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            threads = self._running
            waiting, self._resume = list(self._resume.values()), {}
        for _ in range(threads):
            self._queue.put(None)
        for resumed in waiting:  # nothing will give them a slot now: let them finish
            resumed.set()


# The code of a pool thread's loop: a thread whose stack holds a frame of it is one of the
# pool's, and that frame's ``instruction`` is the task it runs (``running_now`` reads the
# stacks of the tasks running by it).
POOL_LOOP_CODE = TaskRunner._work.__code__
