"""The comm layer's CPU per batch, in one process: no sockets, no other process, no kernel.

A center-side ``Comm`` (a real ``Connection``, past a real handshake, on a uvloop loop) is
handed the bytes of a worker's ``task-finished`` batch as its transport would hand them; its
handler answers with a ``compute-task`` and a ``free-keys`` (what the center sends a worker per
task of a chain), which the comm encodes and flushes on the loop's next pass into a transport
that drops them. So one iteration is what the live processes pay per task around the state
machine: reading, framing, decoding and checking a batch, queueing the answer, encoding,
framing and writing it, and one pass of the event loop.

    python benchmarks/comm_cpu.py [--n 20000] [--runs 5]

Prints the CPU µs per batch of each run and the median. For counts that do not depend on the
machine's load, run it twice under callgrind with two lengths and divide the difference::

    valgrind --tool=callgrind python benchmarks/comm_cpu.py --n 200 --runs 1
    valgrind --tool=callgrind python benchmarks/comm_cpu.py --n 600 --runs 1
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pickle
import statistics
import sys
import time

from dist_protocol.comm import Comm, core
from dist_protocol.comm.protocol import StreamProtocol
from dist_protocol.messages import ComputeTask, FreeKeys, TaskFinished
from dist_protocol.serialize import Payload
from dist_protocol.testing import connection_pair


class DroppingTransport(asyncio.Transport):
    """A transport that takes every write and drops it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:  # (a turn of the loop ran over: nothing to pause here)
        pass

    def resume_reading(self) -> None:
        pass


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def one_run(n: int) -> float:
    """CPU µs per batch over ``n`` batches (after as many to warm up)."""
    worker, center_side = connection_pair(who="center", role="worker")
    loop = new_loop()
    comm = Comm(loop, center_side)
    protocol = StreamProtocol(comm)
    comm.transport = DroppingTransport()
    comm.established = True  # the pair is past its handshake
    function = Payload("pickle", [pickle.dumps(len)])
    args = Payload("pickle", [pickle.dumps((1,))])

    def answer(messages) -> None:
        comm.send(ComputeTask(key="inc-2", function=function, args=args, priority=1),
                  FreeKeys(keys=["inc-0"]))

    comm.set_handler(answer)
    worker.send(TaskFinished(key="inc-1", nbytes=28, type="int", start=1.0, stop=2.0))
    wire = b"".join(bytes(b) for b in worker.data_to_send())

    async def batches(count: int) -> None:
        for _ in range(count):
            buffer = protocol.get_buffer(-1)
            buffer[:len(wire)] = wire
            protocol.buffer_updated(len(wire))
            await asyncio.sleep(0)  # the flush scheduled by the answer runs

    try:
        loop.run_until_complete(batches(n))
        gc.collect()
        gc.disable()  # the same instructions every run
        start = time.process_time()
        loop.run_until_complete(batches(n))
        elapsed = time.process_time() - start
    finally:
        gc.enable()
        loop.close()
    return elapsed / n * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    # One batch per read: no turn needs to end, and under callgrind a batch can outlast the
    # turn's 5 ms and take the pausing path, which would make the counts differ run to run.
    core.TURN = float("inf")
    runs = [one_run(args.n) for _ in range(args.runs)]
    print(f"µs CPU per batch: median {statistics.median(runs):.1f} "
          f"(runs {', '.join(f'{r:.1f}' for r in runs)}), load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
