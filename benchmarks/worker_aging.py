"""A worker's CPU per task when fresh, and again after it has run a million tiny tasks.

A long-lived worker runs tasks for days; nothing it keeps per task (logs, per-prefix
tables, caches, the store's bookkeeping) may make the next task dearer. This starts one real
``Worker`` in this process (its state machine, store, inline policy and thread pool, as
``worker_cpu.py``; no center, so what it would send is dropped), measures the CPU per task
of ``--measure`` tasks of ``inc(i)`` in batches of 100 (each batch freed once finished, the
keys as a client's map makes them: a prefix and a new hash each), then runs ``--tasks``
more such tasks (one million by default), measuring again every ``--every`` of them, and
after the last. Between measurements it records the worker's RSS and the length of every
container reachable from it (the census of ``soak.py``).

    python benchmarks/worker_aging.py                      # 1,000,000 tasks
    python benchmarks/worker_aging.py --tasks 200000 --every 50000

Writes all figures as JSON to ``--output`` (default ``benchmarks/results/worker-aging-<time>.json``)
and prints each measurement (µs of CPU a task, median of ``--repeat`` passes) beside the load.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import socket
import statistics
import time
import uuid

import bench_tasks
import psutil
from dist_protocol.comm import tune_garbage_collector
from dist_protocol.environment import pickle_tag
from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import serialize
from dist_worker.events import ComputesRequested, FreeRequested
from dist_worker.server import Worker
from soak import worker_census

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
BATCH = 100  # orders a batch, as a map's arrive (as worker_cpu.py sends them)


def unused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


async def age(args) -> dict:
    worker = Worker(unused_address(), nthreads=2, heartbeat_interval=3600)
    await worker.start()
    tag = pickle_tag()
    function = serialize(bench_tasks.inc)

    def batch(count: int) -> list[ComputeTask]:
        prefix = f"inc-{uuid.uuid4().hex[:8]}"  # a map's keys: one prefix, a hash each
        return [ComputeTask(key=f"{prefix}{uuid.uuid4().hex}", function=function,
                            args=serialize(((i,), {})), pickled_with=tag) for i in range(count)]

    async def run(count: int) -> float:
        """CPU seconds of ``count`` tasks, orders built before the clock starts."""
        orders = [batch(min(BATCH, count - lo)) for lo in range(0, count, BATCH)]
        cpu = time.process_time()
        for orders_batch in orders:
            worker.handle(ComputesRequested(orders_batch))
            while worker.state.tasks:
                await asyncio.sleep(0)
            worker.handle(FreeRequested([order.key for order in orders_batch]))
        return time.process_time() - cpu

    async def measure(done: int) -> dict:
        gc.collect()
        passes = [await run(args.measure) / args.measure * 1e6 for _ in range(args.repeat)]
        figure = {"tasks_run": done, "us_per_task": statistics.median(passes),
                  "passes": passes, "load": os.getloadavg()[0],
                  "rss_mb": psutil.Process().memory_info().rss / 2**20,
                  "census": worker_census(worker)}
        print(f"after {done:>9,} tasks: {figure['us_per_task']:.1f} µs CPU a task "
              f"(passes {', '.join(f'{p:.1f}' for p in passes)}; load {figure['load']:.1f}; "
              f"RSS {figure['rss_mb']:.1f} MB)", flush=True)
        return figure

    try:
        await run(2_000)  # the inline policy learns the function
        figures = [await measure(0)]
        done = 0
        while done < args.tasks:
            step = min(args.every, args.tasks - done)
            for lo in range(0, step, 10_000):  # (orders built 10,000 at a time: bounded memory)
                await run(min(10_000, step - lo))
            done += step
            figures.append(await measure(done))
        return {"args": vars(args), "measurements": figures}
    finally:
        await worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=250_000)
    parser.add_argument("--measure", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the center it never reaches
    tune_garbage_collector()  # as dworker runs
    result = asyncio.run(age(args))
    first, last = result["measurements"][0], result["measurements"][-1]
    grown = {name: (first["census"].get(name), size) for name, size in last["census"].items()
             if size > first["census"].get(name, 0) and not name.startswith("(allocated")}
    result["grown"] = grown
    output = args.output or os.path.join(
        RESULTS, time.strftime("worker-aging-%Y%m%dT%H%M%S.json", time.gmtime()))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as file:
        json.dump(result, file, indent=1)
    print(f"fresh {first['us_per_task']:.1f} µs a task, after {last['tasks_run']:,} tasks "
          f"{last['us_per_task']:.1f} µs; figures in {output}")
    for name, (before, after) in sorted(grown.items()):
        print(f"grew: {name}: {before} -> {after}")


if __name__ == "__main__":
    main()
