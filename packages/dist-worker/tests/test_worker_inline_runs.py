"""Tasks run inline, one after another, on a worker's event loop: the loop stays hidden from
them for the whole run (not shown and hidden again around each), and is the worker's again
once they ran."""
from __future__ import annotations

import asyncio
import socket

import pytest
from dist_protocol.environment import pickle_tag
from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import dumps_function, serialize
from dist_worker.events import ComputeRequested
from dist_worker.server import Worker


def what_the_task_sees() -> str:
    import asyncio
    if asyncio._get_running_loop() is not None:
        return "a running loop"
    try:
        asyncio.get_event_loop()
    except RuntimeError:  # as on a pool thread
        return "no loop"
    return "an event loop"


def unused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.timeout(60)
def test_tasks_run_inline_in_a_row_see_no_loop_and_the_worker_has_it_back_after(tmp_path):
    async def main() -> list[str]:
        worker = Worker(unused_address(), nthreads=1, heartbeat_interval=3600,
                        local_directory=str(tmp_path))
        await worker.start()
        try:
            function, tag = dumps_function(what_the_task_sees), pickle_tag()
            keys = [f"t-{i}" for i in range(40)]
            # The first runs go to a thread until the function proved fast; the rest run
            # inline, in a row, as each finished one lets the next start.
            worker.handle(*(ComputeRequested(ComputeTask(
                key=key, function=function, args=serialize(((), {})), pickled_with=tag))
                for key in keys))
            while worker.state.tasks:  # until every task finished (each pass runs some)
                await asyncio.sleep(0)
                assert asyncio.get_event_loop() is asyncio.get_running_loop()
            return [worker.state.data[key] for key in keys]
        finally:
            await worker.close()

    seen = asyncio.run(main())
    assert seen == ["no loop"] * len(seen)


def what_the_task_sees_and_where() -> tuple[str, bool]:
    import threading
    return what_the_task_sees(), threading.current_thread() is threading.main_thread()


@pytest.mark.timeout(60)
def test_lone_tasks_each_run_inline_on_its_own_see_no_loop_in_every_stretch(tmp_path):
    """One task at a time, each finished before the next arrives (a latency loop's): every
    one is a stretch of its own, and the loop the worker runs on -- made the thread's current
    loop by ``asyncio.run`` here -- stays out of sight in each, not only in the first."""
    async def main() -> list[tuple[str, bool]]:
        worker = Worker(unused_address(), nthreads=1, heartbeat_interval=3600,
                        local_directory=str(tmp_path))
        await worker.start()
        try:
            function, tag = dumps_function(what_the_task_sees_and_where), pickle_tag()
            seen = []
            for i in range(30):
                key = f"t-{i}"
                worker.handle(ComputeRequested(ComputeTask(
                    key=key, function=function, args=serialize(((), {})), pickled_with=tag)))
                while worker.state.tasks:
                    await asyncio.sleep(0)
                assert asyncio.get_event_loop() is asyncio.get_running_loop()
                seen.append(worker.state.data[key])
            return seen
        finally:
            await worker.close()

    seen = asyncio.run(main())
    assert [sees for sees, _ in seen] == ["no loop"] * 30
    assert sum(on_loop for _, on_loop in seen) >= 20  # (the first ones prove it on a thread)


def on_the_loops_thread(_partition: int) -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


@pytest.mark.timeout(60)
def test_the_tasks_of_a_dask_layer_run_inline_once_its_first_ones_proved_fast(tmp_path):
    import functools

    from dist_worker.inline_policy import InlinePolicy

    async def main() -> list[bool]:
        worker = Worker(unused_address(), nthreads=1, heartbeat_interval=3600,
                        local_directory=str(tmp_path))
        await worker.start()
        try:
            tag = pickle_tag()
            keys = [f"('getitem-abc', {i})" for i in range(40)]
            # As a dask graph's tasks: each its own pickle, the partition inside it.
            worker.handle(*(ComputeRequested(ComputeTask(
                key=key, function=dumps_function(functools.partial(on_the_loops_thread, i)),
                args=serialize(((), {})), pickled_with=tag)) for i, key in enumerate(keys)))
            while worker.state.tasks:
                await asyncio.sleep(0)
            return [worker.state.data[key] for key in keys]
        finally:
            await worker.close()

    on_loop = asyncio.run(main())
    assert not any(on_loop[:InlinePolicy.NEEDED])  # proving themselves on the pool
    assert any(on_loop[InlinePolicy.NEEDED:])


def own_context() -> tuple[str, bool]:
    from dist_protocol import task_context
    context = task_context.current()
    assert context is not None
    return context.key, context.on_loop


@pytest.mark.timeout(60)
def test_tasks_run_inline_in_a_row_each_see_their_own_context_and_the_loop_none_after(tmp_path):
    from dist_protocol import task_context

    async def main() -> list[tuple[str, bool]]:
        worker = Worker(unused_address(), nthreads=1, heartbeat_interval=3600,
                        local_directory=str(tmp_path))
        await worker.start()
        try:
            function, tag = dumps_function(own_context), pickle_tag()
            keys = [f"t-{i}" for i in range(200)]
            worker.handle(*(ComputeRequested(ComputeTask(
                key=key, function=function, args=serialize(((), {})), pickled_with=tag))
                for key in keys))
            while worker.state.tasks:
                await asyncio.sleep(0)
                assert task_context.current() is None  # the loop's own code: no task's
            return [worker.state.data[key] for key in keys]
        finally:
            await worker.close()

    seen = asyncio.run(main())
    assert [key for key, _ in seen] == [f"t-{i}" for i in range(200)]
    assert any(on_loop for _, on_loop in seen)  # (the first ones run on a thread)


def slow_at(i: int, slow: int) -> bool:
    """On the loop's thread? ``slow``'s run takes long enough to send its function back."""
    import threading
    import time
    if i == slow:
        time.sleep(0.05)
    return threading.current_thread() is threading.main_thread()


@pytest.mark.timeout(60)
def test_a_map_s_tasks_are_told_to_the_state_a_run_at_a_time_and_a_slow_one_ends_the_run(
        tmp_path):
    """Tasks lent for a run on the loop whose function turned slow on the way are given back
    and run on the pool, each once; the state hears of many runs per event."""
    from dist_worker.events import InlineRunEnded

    keys = [f"slow_at-{i}" for i in range(120)]

    async def main() -> tuple[list[bool], list[int]]:
        worker = Worker(unused_address(), nthreads=1, heartbeat_interval=3600,
                        local_directory=str(tmp_path))
        await worker.start()
        told: list[int] = []  # the outcomes each InlineRunEnded brought
        handle = worker.state.handle

        def counting(*events):
            told.extend(len(e.outcomes) for e in events if type(e) is InlineRunEnded)
            return handle(*events)
        worker.state.handle = counting  # type: ignore[method-assign]
        try:
            function, tag = dumps_function(slow_at), pickle_tag()
            worker.handle(*(ComputeRequested(ComputeTask(
                key=key, function=function, args=serialize(((i, 60), {})), pickled_with=tag))
                for i, key in enumerate(keys)))
            while worker.state.tasks:
                await asyncio.sleep(0)
            worker.state.validate()
            assert not worker.state.lent and not worker.state.executing
            return [worker.state.data[key] for key in keys], told
        finally:
            await worker.close()

    from dist_worker.inline_policy import InlinePolicy

    on_loop, told = asyncio.run(main())
    assert any(on_loop[:61])  # (the first ones prove it fast on the pool)
    # The rest of the slow one's run given back: on the pool, until proven fast again.
    assert not any(on_loop[61:61 + InlinePolicy.NEEDED])
    assert max(told) > 1  # runs told back whole
