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
from dist_protocol.comm import tune_garbage_collector
from dist_protocol.environment import pickle_tag
from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import serialize
from dist_worker.events import ComputeRequested, FreeRequested
from dist_worker.execution import InlinePolicy
from dist_worker.server import Worker

BATCH = 100


def unused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


async def one_run(n: int, lone: bool = False) -> float:
    worker = Worker(unused_address(), nthreads=2, heartbeat_interval=3600)
    await worker.start()
    function, tag = serialize(bench_tasks.inc), pickle_tag()

    def batches(prefix: str, count: int, size: int = BATCH) -> list[list[ComputeTask]]:
        return [[ComputeTask(key=f"{prefix}-{i}", function=function,
                             args=serialize(((i,), {})), pickled_with=tag)
                 for i in range(lo, min(lo + size, count))] for lo in range(0, count, size)]

    async def run(orders: list[list[ComputeTask]]) -> float:
        gc.collect()
        cpu = time.process_time()
        for batch in orders:
            worker.handle(*(ComputeRequested(message) for message in batch))
            while worker.state.tasks:  # (a lone order run inline is done at once)
                await asyncio.sleep(0)
            worker.handle(FreeRequested([message.key for message in batch]))
        return time.process_time() - cpu

    try:
        await run(batches("warm-up", 500))  # the inline policy learns that inc is fast
        if lone:
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
    args = parser.parse_args()
    if args.lone:
        InlinePolicy.FAST = InlinePolicy.SLOW = InlinePolicy.BUDGET = 3600.0
    logging.disable(logging.WARNING)  # the center it never reaches
    tune_garbage_collector()  # as dworker runs
    figures = []
    for _ in range(args.runs):
        figures.append(asyncio.run(one_run(args.n, args.lone)) * 1e6)
        print(f"{figures[-1]:.1f} µs CPU per task (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"median of {args.runs}: {statistics.median(figures):.1f} µs CPU per task")


if __name__ == "__main__":
    main()
