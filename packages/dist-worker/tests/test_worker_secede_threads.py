"""The runner's threads when a task secedes and rejoins: a thread starts in place of a seceded
one, and one too many retires once the task has rejoined and ended. Driven through a real
WorkerState, as the worker drives them."""
import asyncio
import threading

from dist_protocol import task_context
from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import dumps_function
from dist_protocol.task_context import TaskContext
from dist_worker.events import ComputeRequested, Execute, Resume, SendToCenter
from dist_worker.task_runner import TaskRunner
from dist_worker.state import WorkerState

child_ran = threading.Event()


def parent():
    context = task_context.current()
    context.secede()
    assert child_ran.wait(20)  # the child runs on the only slot, given back here
    context.rejoin()
    return "parent"


def child():
    child_ran.set()
    return "child"


def test_a_seceded_task_lets_a_single_thread_worker_run_the_task_it_waits_for():
    async def main():
        state = WorkerState(nthreads=1)
        finished, sent = asyncio.Event(), []
        runner = None

        def act(instructions):
            for ins in instructions:
                if type(ins) is Execute:
                    runner.submit(ins)
                elif type(ins) is Resume:
                    runner.resume(ins.key)
                elif type(ins) is SendToCenter:
                    sent.append(ins.message)
            if sum(1 for m in sent if m.op == "task-finished") == 2:
                finished.set()

        def context(key):
            return TaskContext(key=key, worker="w", center="c", token=None, ssl_context=None,
                               slots=runner)

        runner = TaskRunner(1, asyncio.get_running_loop(),
                            lambda outcomes: act(state.handle(*outcomes)),
                            lambda event: act(state.handle(event)), context)
        try:
            act(state.handle(*(ComputeRequested(ComputeTask(key=key,
                                                            function=dumps_function(func)))
                               for key, func in (("parent", parent), ("child", child)))))
            await asyncio.wait_for(finished.wait(), 20)
            assert [m.op for m in sent] == ["task-seceded", "task-finished", "task-finished"]
            assert state.data == {"parent": "parent", "child": "child"}
            assert not state.seceded and not state.executing
            # The thread one too many retires just after posting its outcome (no event says
            # so): give it that moment.
            for _ in range(2000):
                if runner.threads == 1:
                    break
                await asyncio.sleep(0.005)
            assert runner.threads == 1
            assert task_context.current() is None  # (set only on the task's own thread)
        finally:
            runner.close()
    asyncio.run(main())


def test_a_key_run_again_before_its_last_runs_thread_retired_keeps_the_pool_whole():
    # A retry submits a failed key again as soon as its error is out: the new run may come
    # before the thread of the last one has retired. Held there (``after``), that thread must
    # not take the new run's claim to a slot, or the new run's thread retires as if replaced
    # and the pool is one thread short for good (tasks queued on it would wait for ever).
    async def main():
        outcomes: asyncio.Queue = asyncio.Queue()
        first_run_out, let_it_retire = threading.Event(), threading.Event()
        runs = []

        def after(key, _started):
            runs.append(key)
            if len(runs) == 1:
                first_run_out.set()
                assert let_it_retire.wait(20)

        runner = TaskRunner(1, asyncio.get_running_loop(),
                            lambda done: [outcomes.put_nowait(o) for o in done], after=after)

        def run(key):
            runner.submit(Execute(key, dumps_function(child), None, {}))

        try:
            run("again")
            assert (await asyncio.wait_for(outcomes.get(), 20)).key == "again"
            assert await asyncio.to_thread(first_run_out.wait, 20)
            run("again")  # while the first run's thread has not retired yet
            let_it_retire.set()
            assert (await asyncio.wait_for(outcomes.get(), 20)).key == "again"
            run("next")
            assert (await asyncio.wait_for(outcomes.get(), 20)).key == "next"
            assert runner.threads == 1
        finally:
            let_it_retire.set()
            runner.close()
    asyncio.run(main())
