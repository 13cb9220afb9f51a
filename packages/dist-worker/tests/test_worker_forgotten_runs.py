"""Runs a restart forgot, told apart from new runs of their keys: a real TaskRunner driven
through a real WorkerState, as the worker drives them (``forget_runs`` before the state's
``RestartRequested``)."""
import asyncio
import threading

import pytest

from dist_protocol import task_context
from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import dumps_function
from dist_protocol.task_context import TaskContext
from dist_worker.events import (ComputeRequested, Execute, RestartRequested, Resume,
                                SendToCenter)
from dist_worker.state import WorkerState
from dist_worker.task_runner import TaskRunner

pytestmark = pytest.mark.timeout(60)

restarted, second_seceded, first_done = threading.Event(), threading.Event(), threading.Event()


def first_run():
    context = task_context.current()
    context.secede()
    assert restarted.wait(20) and second_seceded.wait(20)
    context.rejoin()  # (forgotten: goes on at once, without a slot)
    first_done.set()
    return 1


def second_run():
    context = task_context.current()
    context.secede()
    second_seceded.set()
    context.rejoin()
    return 2


class Driven:
    """A WorkerState and a TaskRunner wired as the worker wires them."""

    def __init__(self, nthreads: int):
        self.state = WorkerState(nthreads=nthreads)
        self.sent: list = []
        self.changed = asyncio.Event()
        self.runner = TaskRunner(nthreads, asyncio.get_running_loop(),
                                 lambda outcomes: self.act(self.state.handle(*outcomes)),
                                 lambda event: self.act(self.state.handle(event)), self.context)

    def context(self, key):
        return TaskContext(key=key, worker="w", center="c", token=None, ssl_context=None,
                           slots=self.runner)

    def act(self, instructions):
        for ins in instructions:
            if type(ins) is Execute:
                self.runner.submit(ins)
            elif type(ins) is Resume:
                self.runner.resume(ins.key)
            elif type(ins) is SendToCenter:
                self.sent.append(ins.message)
        self.state.validate()
        self.changed.set()

    def compute(self, key, function):
        self.act(self.state.handle(ComputeRequested(ComputeTask(
            key=key, function=dumps_function(function)))))

    def restart(self):
        self.runner.forget_runs()
        self.act(self.state.handle(RestartRequested("the cluster restarts")))

    async def until(self, condition):
        while not condition():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 20)

    def finished(self):
        return [m.key for m in self.sent if m.op == "task-finished"]


def test_two_runs_of_one_key_seceded_at_once_both_go_on():
    # The restart forgot the first run of "a" while it was seceded; the second, of the same
    # key, secedes too. Keyed by key, both rejoined through one entry: one waited for ever.
    async def main():
        driven = Driven(nthreads=1)
        try:
            driven.compute("a", first_run)
            await driven.until(lambda: driven.state.seceded == {"a"})
            driven.restart()
            restarted.set()
            driven.compute("a", second_run)
            await driven.until(lambda: driven.finished() == ["a"])
            assert await asyncio.to_thread(first_done.wait, 20)
            await driven.until(lambda: driven.state.forgotten_slots == 0
                               and not driven.state.executing)
            assert driven.state.data == {"a": 2}
            assert [m.op for m in driven.sent].count("task-seceded") == 2
        finally:
            driven.runner.close()
    asyncio.run(main())


blocker_release = threading.Event()


def blocker():
    assert blocker_release.wait(20)
    return "blocker"


def again():
    return "again"


def test_a_forgotten_run_holds_its_thread_until_it_ends_and_its_value_goes_nowhere():
    async def main():
        driven = Driven(nthreads=1)
        try:
            driven.compute("b", blocker)
            await driven.until(lambda: driven.state.executing == {"b"})
            driven.restart()
            driven.compute("b", again)  # the forgotten run holds the only thread
            assert driven.state.forgotten_slots == 1 and not driven.state.executing
            blocker_release.set()
            await driven.until(lambda: driven.finished() == ["b"])
            assert driven.state.data == {"b": "again"}  # not the forgotten run's "blocker"
            assert driven.state.forgotten_slots == 0
        finally:
            driven.runner.close()
    asyncio.run(main())
