"""A worker's CPU per task, in one process: ``compute-task`` batches in, results out.

A real ``Worker`` (its state machine, store, inline policy and thread pool; no center, so what
it would send is dropped) is handed ``compute-task`` orders for ``inc(i)`` in batches of 100,
as a map's arrive, and each batch is freed once it finished. The orders are built before the
clock starts: what is timed is what the worker's process pays per task between the comm
handing it a decoded batch and the comm taking its answers -- the state machine, running the
task inline or on a thread, sizing and keeping the result, and the loop's passes.

    python benchmarks/worker_cpu.py [--n 20000] [--runs 3] [--lone]

Prints the CPU µs per task of each run and the median, beside the load average.

``--lone``: one order at a time, as a latency loop's arrive, each freed once done; every run
stays on the loop (the inline policy's limits lifted), so a task is handled from order to
result without a pass of the loop in between and no timer can add to it. For instruction
counts, run it under callgrind with two lengths and divide the difference::

    valgrind --tool=callgrind python benchmarks/worker_cpu.py --lone --runs 1 --n 500
    valgrind --tool=callgrind python benchmarks/worker_cpu.py --lone --runs 1 --n 2000

``--pool``: one order at a time, each run on the worker's one pool thread (the inline policy
never lets it onto the loop), as a dask collection's tasks of a millisecond or more run, with
a memory limit as ``dworker`` has by default (the process measured around each task), on
the event loop ``dworker`` runs (uvloop's when installed); each
task makes a numpy array of ``--result-bytes`` (4 kB by default: a dask.array partial sum,
pickled and kept; from 16 kB, only sized, as a chunk). The same two lengths under callgrind
give the instructions of a task's trip through the pool, both threads counted.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import socket
import statistics
import time

import bench_tasks
from dist_protocol.comm import run, tune_garbage_collector
from dist_protocol.environment import pickle_tag
from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import serialize
from dist_worker.events import ComputeRequested, FreeRequested

try:  # a batch is one event, as the worker's server hands it over (since the seventeenth round)
    from dist_worker.events import ComputesRequested
except ImportError:  # an older tree, counted for comparison: one event an order, as it did
    ComputesRequested = None  # type: ignore[assignment, misc]
from dist_worker.inline_policy import InlinePolicy
from dist_worker.memory import MemoryPolicy
from dist_worker.server import Worker

BATCH = 100


def unused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


POOL_MEMORY_LIMIT = 4 << 30


async def one_run(n: int, lone: bool = False, result_bytes: int | None = None) -> float:
    pool = result_bytes is not None
    worker = Worker(unused_address(), nthreads=1 if pool else 2, heartbeat_interval=3600,
                    memory_policy=MemoryPolicy(limit=POOL_MEMORY_LIMIT) if pool else None)
    await worker.start()
    tag = pickle_tag()
    function = serialize(bench_tasks.make_array if pool else bench_tasks.inc)
    done = asyncio.Event()
    if pool:  # woken when the pool hands a result back, not by polling the state
        on_executed = worker._runner.on_done  # type: ignore[union-attr]

        def executed(outcomes: list) -> None:
            on_executed(outcomes)
            done.set()
        worker._runner.on_done = executed  # type: ignore[union-attr]

    def batches(prefix: str, count: int, size: int = BATCH) -> list[list[ComputeTask]]:
        return [[ComputeTask(key=f"{prefix}-{i}", function=function,
                             args=serialize(((result_bytes if pool else i,), {})),
                             pickled_with=tag)
                 for i in range(lo, min(lo + size, count))] for lo in range(0, count, size)]

    async def run(orders: list[list[ComputeTask]]) -> float:
        gc.collect()
        cpu = time.process_time()
        for batch in orders:
            if ComputesRequested is not None:
                worker.handle(ComputesRequested(batch))
            else:
                worker.handle(*(ComputeRequested(message) for message in batch))
            while worker.state.tasks:  # (a lone order run inline is done at once)
                if pool:
                    done.clear()
                    await done.wait()
                else:
                    await asyncio.sleep(0)
            worker.handle(FreeRequested([message.key for message in batch]))
        return time.process_time() - cpu

    try:
        await run(batches("warm-up", 500, 1 if pool else BATCH))  # the policy learns
        if lone or pool:
            return await run([[order] for [order] in batches("task", n, 1)]) / n
        return await run(batches("task", n)) / n
    finally:
        await worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lone", action="store_true",
                        help="one order at a time, every run on the loop (see above)")
    parser.add_argument("--pool", action="store_true",
                        help="one order at a time, every run on the pool thread (see above)")
    parser.add_argument("--result-bytes", type=int, default=4096)
    args = parser.parse_args()
    if args.pool:
        InlinePolicy.NEEDED = 1 << 62
    if args.lone:
        InlinePolicy.FAST = InlinePolicy.SLOW = InlinePolicy.BUDGET = 3600.0
    logging.disable(logging.WARNING)  # the center it never reaches
    tune_garbage_collector()  # as dworker runs
    figures = []
    for _ in range(args.runs):
        if args.pool:  # on the loop dworker runs (uvloop's when installed)
            spent = run(one_run(args.n, result_bytes=args.result_bytes))
        else:
            spent = asyncio.run(one_run(args.n, args.lone))
        assert isinstance(spent, float)
        figures.append(spent * 1e6)
        print(f"{figures[-1]:.1f} µs CPU per task (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"median of {args.runs}: {statistics.median(figures):.1f} µs CPU per task")


if __name__ == "__main__":
    main()
