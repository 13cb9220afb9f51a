"""Carrying out the worker state's orders on the event loop's thread.

``WorkerState`` decides; ``OrderCarrier`` does what it decided, in order. A message for the
center joins the row of them sent in one call. A task of a function proven fast
(``InlinePolicy``) runs right here, on the loop's thread, in a stretch with the ones after it
(``LoopStretch``). Every other order (a task for the pool, an actor, a fetch, a resumption)
goes to the worker's I/O (``dispatch``). How a run of inline tasks ended goes back to the
state in one event (``InlineRunEnded``), which may lend the loop the next tasks of the same
function (``RunInline``). A pass of the loop runs ``InlinePolicy.BUDGET`` seconds of inline
work at most; the orders left wait for the next pass (``deferred``), after the loop served
its I/O.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from dist_protocol import task_context
from dist_protocol.messages import Message
from dist_protocol.task_context import RunOnThread, TaskContext

from . import unpickling
from .events import (Execute, ExecutionFailed, ExecutionSucceeded, InlineRunEnded, RunInline,
                     SendToCenter)
from .execution import hide_loop, hide_running_loop, run_task, show_loop
from .inline_policy import InlinePolicy
from .stallwatch import StallWatch
from .state import WorkerState
from .task_signals import KeptHandlers

log = logging.getLogger("dist.worker")
# Ready tasks of a map the state lends the event loop at a time, past the one it ran inline
# (``RunInline``): a column block's worth; a pass of the loop runs what its time allows.
INLINE_RUN = 100


class LoopStretch:
    """Tasks run inline one after the other, once a pass of the loop at most. The loop stays
    hidden from them (``hide_loop``) in between too, where only the state and sends to the
    center run: hiding and showing it costs more than a trivial task. So does the last task's
    context (``task_context.current()``), which nothing between two tasks asks for. The
    stretch ends before any other order and on the way out of a pass."""

    def __init__(self, policy: InlinePolicy, watch: StallWatch):
        self.policy = policy
        self.watch = watch
        # The worker's loop, once started: hidden without asking asyncio for it (a system
        # call each time, to check the process id).
        self.loop: asyncio.AbstractEventLoop | None = None
        # The handlers of the signals the worker handles, which an inline task could replace.
        self.signal_handlers: KeptHandlers | None = None
        self.open = False
        self._hidden: asyncio.AbstractEventLoop | None = None
        # The loop whose thread's current loop the first stretch set to none (the policy's
        # ``set_event_loop``): later stretches on it hide only the running loop.
        self._thread_loop_hidden_for: asyncio.AbstractEventLoop | None = None

    def begin(self) -> None:
        """After the watch was told of the first task (``StallWatch.arm``)."""
        self.watch.arm()
        self.policy.stretch_begins()
        loop = self.loop
        if loop is not None and loop is self._thread_loop_hidden_for:
            self._hidden = hide_running_loop(loop)
        else:
            self._hidden = hide_loop(loop)
            self._thread_loop_hidden_for = loop
        self.open = True

    def end(self) -> None:
        """The loop shown again, and the worker's signal handlers put back if one of the
        stretch's tasks replaced them (``KeptHandlers``)."""
        if not self.open:
            return
        self.open = False
        watch = self.watch
        last = watch.running
        watch.running = None
        task_context.set_current(None)
        show_loop(self._hidden)
        self._hidden = None
        if self.signal_handlers is not None:
            replaced = self.signal_handlers.put_back()
            if replaced:
                log.warning("a task run on the event loop (the last: %s) replaced the worker's "
                            "handler of %s: put back (a task's own handler cannot outlive it)",
                            last, ", ".join(replaced))


class OrderCarrier:
    """``act(instructions)``: carry out what the state returned. ``dispatch(order)`` is the
    worker's I/O for whatever does not run inline; ``send_center(*messages)`` its row of
    messages to the center; ``context(key, on_loop)`` what a task sees of the worker."""

    def __init__(self, state: WorkerState, policy: InlinePolicy, stretch: LoopStretch,
                 send_center: Callable[..., None], dispatch: Callable[[Any], None],
                 context: Callable[[str, bool], TaskContext]):
        self.state = state
        self.policy = policy
        self.stretch = stretch
        self.send_center = send_center
        self.dispatch = dispatch
        self.context = context
        # No task runs inline while the stall watch could not keep the worker alive towards
        # the center from its own thread (the connection to it is not a plain socket: TLS,
        # whose bytes only the loop may write).
        self.center_unwatched = False
        # Orders not yet carried out, when a pass of the loop ran out of time for inline tasks.
        self.deferred: collections.deque | None = None
        self._pooled: dict[str, Any] = {}  # key -> function key, for tasks on the pool

    def act(self, instructions: list) -> None:
        if not instructions:  # (most frees of results: no pass to set up for nothing)
            return
        if self.deferred is not None:  # what is left of an earlier order goes first
            self.deferred.extend(instructions)
            return
        self.carry_out(collections.deque(instructions))

    def pool_ran(self, outcomes: list) -> None:
        """Pool threads' runs ended: the policy learns how long their functions took."""
        pooled, policy = self._pooled, self.policy
        for outcome in outcomes:
            function_key = pooled.pop(outcome.key, None)
            if function_key is None:
                continue
            if type(outcome) is ExecutionSucceeded:
                policy.record(function_key, outcome.stop - outcome.start, False)
            elif type(outcome) is ExecutionFailed:
                policy.record_failed(function_key, outcome.error, False)

    def carry_out(self, pending: collections.deque) -> None:
        """One pass over ``pending``. What goes to the center is sent in one call where it
        comes in a row (a finished task's message after each inline run), before anything
        else is done and on the way out, in order. The outcomes of inline runs, and the tasks
        lent for a run that the loop gives back unrun (``declined``), are told to the state
        in one event once nothing is left to run, or before anything else is done, rather
        than one event a task; with nothing left, the state is asked for the next ready tasks
        of the function last run, to run the same way."""
        self.deferred = None
        inline_until = time.perf_counter() + InlinePolicy.BUDGET
        to_center: list[Message] = []
        finished: list[Any] = []
        declined: list[str] = []
        function: Any = None  # of the last task run inline, and its key in the policy
        run_key: Any = None
        lent = self.state.lent
        policy = self.policy
        stretch = self.stretch
        center_unwatched = self.center_unwatched
        try:
            while True:
                while pending:
                    ins = pending.popleft()
                    kind = type(ins)
                    if kind is SendToCenter:
                        to_center.append(ins.message)
                        continue
                    if kind is RunInline:
                        pending.extendleft(reversed(ins.executes))
                        continue
                    if kind is Execute and not ins.actor:
                        function_key = policy.function_key(ins.function, ins.key)
                        if policy.allows(function_key) and not center_unwatched \
                                and not unpickling.busy():
                            if time.perf_counter() >= inline_until:
                                pending.appendleft(ins)
                                self._defer(pending, finished, declined, to_center)
                                # (told and sent: nothing of them is left for the way out)
                                finished, declined, to_center = [], [], []
                                return
                            outcome = self._run_inline(ins, function_key)
                            if outcome is None:  # it waits on the cluster: for a thread
                                pending.appendleft(ins)
                                continue
                            finished.append(outcome)
                            function, run_key = ins.function, function_key
                            continue
                        if ins.key in lent:
                            # Lent for a run on the loop, which it no longer takes: ready
                            # again, for a thread's slot.
                            declined.append(ins.key)
                            continue
                    if finished or declined:
                        # The state hears of the runs first, as it would have after each.
                        pending.appendleft(ins)
                        self._tell_run(finished, declined, None, 0, pending, to_center)
                        finished, declined = [], []
                        continue
                    if to_center:
                        self.send_center(*to_center)
                        to_center = []
                    stretch.end()
                    if kind is Execute and not ins.actor:  # for a pool thread
                        self._pooled[ins.key] = function_key
                    self.dispatch(ins)
                if not finished and not declined:
                    break
                # (the next run only if its function still runs inline: its last run may
                # have been slow)
                more = INLINE_RUN if function is not None and policy.allows(run_key) else 0
                self._tell_run(finished, declined, function, more, pending, to_center)
                finished, declined, function = [], [], None
        finally:
            if finished or declined:  # (only when something above raised)
                rest: list[Any] = []
                self._tell_run(finished, declined, None, 0, rest, to_center)
                if rest:
                    asyncio.get_running_loop().call_soon(self.act, rest)
            stretch.end()
            if to_center:
                self.send_center(*to_center)

    def _run_inline(self, ins: Execute, function_key: Any
                    ) -> ExecutionSucceeded | ExecutionFailed | None:
        """Run ``ins`` on the loop's thread; None if it must run on a thread instead (it waits
        on the cluster, which the loop must serve meanwhile)."""
        stretch = self.stretch
        watch = stretch.watch
        watch.running = ins.key
        watch.runs += 1
        if not stretch.open:
            stretch.begin()
        task_context.set_current(self.context(ins.key, True))
        try:
            outcome = run_task(ins)
        except RunOnThread:
            self.policy.bar(function_key)
            return None
        if type(outcome) is ExecutionSucceeded:
            self.policy.record(function_key, outcome.stop - outcome.start)
        elif type(outcome) is ExecutionFailed:
            self.policy.record_failed(function_key, outcome.error)
        return outcome

    def _defer(self, pending: collections.deque, finished: list, declined: list[str],
               to_center: list[Message]) -> None:
        """This pass of the loop has had its share of inline work: the rest goes on at the
        next pass, after the loop served its I/O (handing a fast task to a thread would cost
        more than the task)."""
        if finished or declined:
            self._tell_run(finished, declined, None, 0, pending, to_center)
        self.deferred = pending
        if to_center:
            self.send_center(*to_center)
        self.stretch.end()
        asyncio.get_running_loop().call_soon(self.carry_out, pending)

    def _tell_run(self, finished: list, declined: list[str], function: Any, more: int,
                  pending: Any, to_center: list[Message]) -> None:
        """Tell the state how a run on the loop ended; what it has for the center joins
        ``to_center`` (sent before anything else is done), the rest ``pending``."""
        for ins in self.state.handle(InlineRunEnded(finished, declined, function, more)):
            if type(ins) is SendToCenter:
                to_center.append(ins.message)
            else:
                pending.append(ins)
