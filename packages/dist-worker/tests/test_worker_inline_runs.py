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
