"""OrderCarrier, without sockets: what the state decides is carried out in order. Messages for
the center go in one row before anything else; tasks of a function proven fast run on the
loop's thread and are told back in one event a run; every other order goes to the worker's
I/O; what a pass of the loop had no time left for is carried out at the next pass, before
orders that came meanwhile, and nothing of it twice."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from dist_protocol.messages import ComputeTask, TaskFinished
from dist_protocol.serialize import serialize
from dist_worker import orders as orders_module
from dist_worker.events import ComputesRequested, Execute, SendToCenter
from dist_worker.inline_policy import InlinePolicy
from dist_worker.orders import LoopStretch, OrderCarrier
from dist_worker.stallwatch import StallWatch
from dist_worker.state import WorkerState

FUNCTION = "builtins:abs"
KEYS = [f"abs-{i}" for i in range(5)]


def compute_tasks() -> ComputesRequested:
    return ComputesRequested([ComputeTask(key=key, function=FUNCTION,
                                          args=serialize(((-i,), {})))
                              for i, key in enumerate(KEYS)])


class Carried:
    """An OrderCarrier over a WorkerState with one thread; ``done`` is what it carried out,
    in order: ("center", keys of a row of messages) and ("dispatch", an order)."""

    def __init__(self, proven_fast: bool) -> None:
        self.state = WorkerState(1, "tcp://me:1")
        policy = InlinePolicy()
        if proven_fast:
            for _ in range(InlinePolicy.NEEDED):
                policy.record(FUNCTION, 0.0)
        self.watch = StallWatch(3600, lambda key, looks: None)
        self.stretch = LoopStretch(policy, self.watch)
        self.done: list[tuple[str, Any]] = []
        self.carrier = OrderCarrier(self.state, policy, self.stretch, self._send,
                                    self._dispatch, lambda key, on_loop: None)  # type: ignore[arg-type, return-value]

    def _send(self, *messages: TaskFinished) -> None:
        self.done.append(("center", [message.key for message in messages]))

    def _dispatch(self, order: Any) -> None:
        self.done.append(("dispatch", order))

    def act(self, *events: Any) -> None:
        self.carrier.act(self.state.handle(*events))
        self.state.validate()

    def close(self) -> None:
        self.watch.close()


def test_a_function_not_proven_fast_goes_to_the_pool():
    async def main() -> None:
        carried = Carried(proven_fast=False)
        try:
            carried.act(compute_tasks())
            [(what, order)] = carried.done
            assert what == "dispatch" and type(order) is Execute and order.key == KEYS[0]
            assert carried.state.executing == {KEYS[0]} and not carried.state.lent
        finally:
            carried.close()

    asyncio.run(main())


def test_a_proven_function_runs_on_the_loop_its_results_sent_in_one_row(monkeypatch):
    # A clock that stands still: the pass's budget never runs out.
    monkeypatch.setattr(orders_module.time, "perf_counter", lambda: 0.0)

    async def main() -> None:
        carried = Carried(proven_fast=True)
        try:
            carried.act(compute_tasks())
            # The first ran in the thread's slot, the rest lent to the loop as a run; all
            # five finished in this pass, their messages in one row, nothing to the pool.
            assert carried.done == [("center", KEYS)]
            assert carried.state.data == {key: i for i, key in enumerate(KEYS)}
            assert not carried.state.executing and not carried.state.lent
            assert not carried.stretch.open and carried.watch.running is None
            # Told in one event a run (the first task's, then the lent run's), not one a task.
            stimuli = {sid for _, _, finish, sid, _ in carried.state.log if finish == "memory"}
            assert len(stimuli) == 2 and all(sid.startswith("inline-run-") for sid in stimuli)
        finally:
            carried.close()

    asyncio.run(main())


@pytest.mark.timeout(30)
def test_what_a_pass_had_no_time_for_goes_on_at_the_next_before_later_orders(monkeypatch):
    # A clock that moves a millisecond a look: the budget (2 ms) lets a pass run one task.
    now = [time.perf_counter()]

    def ticking() -> float:
        now[0] += 0.001
        return now[0]

    monkeypatch.setattr(orders_module.time, "perf_counter", ticking)
    monkeypatch.setattr(InlinePolicy, "BUDGET", 0.002)

    async def main() -> None:
        carried = Carried(proven_fast=True)
        try:
            carried.act(compute_tasks())
            first = carried.done[:]
            assert first and len(first[0][1]) < len(KEYS)  # a pass ran out of time
            assert carried.carrier.deferred is not None
            # An order meanwhile waits behind what is left.
            carried.carrier.act([SendToCenter(TaskFinished(key="later", nbytes=1))])
            while carried.carrier.deferred is not None:
                await asyncio.sleep(0)
            # Each result sent once and told to the state once, in the order they ran. (The
            # later message joins the row as it comes, ahead of the last run's results, which
            # the state hears of once nothing is left to run.)
            sent = [key for what, keys in carried.done if what == "center" for key in keys]
            assert sorted(sent) == sorted([*KEYS, "later"])
            assert [key for key in sent if key != "later"] == KEYS
            assert [key for key, _, finish, _, _ in carried.state.log
                    if finish == "memory"] == KEYS
            assert carried.state.data == {key: i for i, key in enumerate(KEYS)}
        finally:
            carried.close()

    asyncio.run(main())
