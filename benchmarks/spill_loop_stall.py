"""How long one large value's spill holds a worker's event loop, in one process.

    python benchmarks/spill_loop_stall.py --mb 400 --kind compressible --codec lz4

Stores one value past a worker store's target on a running event loop, with the store's
large writes on the loop (``--on-loop``, as before they moved) or on the writer's thread
(the default), while a ticker on the loop wakes every 10 ms; prints the longest gap between
two ticks (what a heartbeat, a peer or an inline task would wait) and the time until the
value's file is whole. ``--kind``: ``random`` (float64 noise), ``compressible`` (small
whole numbers as floats), ``bytes`` (os.urandom). Repeats ``--runs`` times, each in a fresh
store.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

TICK = 0.01


def make(kind: str, nbytes: int):
    import numpy
    rng = numpy.random.default_rng(0)
    if kind == "random":
        return rng.random(nbytes // 8)
    if kind == "compressible":
        return rng.integers(0, 50, nbytes // 8, dtype=numpy.uint8).astype(numpy.float64)
    if kind == "bytes":
        return os.urandom(nbytes)
    raise ValueError(kind)


async def one_run(value, codec: str, on_loop: bool) -> tuple[float, float]:
    from dist_worker.spillwriter import SpillWriter
    from dist_worker.store import DataStore

    with tempfile.TemporaryDirectory() as directory:
        store = DataStore(target=10 * 2**20, directory=directory, spill_compression=codec,
                          writer=None if on_loop else SpillWriter())
        longest = 0.0
        done = False

        async def ticker() -> None:
            nonlocal longest
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(TICK)
                now = time.perf_counter()
                longest = max(longest, now - last - TICK)
                last = now

        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(5 * TICK)
        start = time.perf_counter()
        store["value"] = value
        while not store.on_disk("value"):
            await asyncio.sleep(TICK)
        written = time.perf_counter() - start
        done = True
        await ticking
        store.close()
        return longest, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=400)
    parser.add_argument("--kind", default="compressible",
                        choices=("random", "compressible", "bytes"))
    parser.add_argument("--codec", default="lz4", choices=("lz4", "zstd", "none"))
    parser.add_argument("--on-loop", action="store_true",
                        help="write on the loop, as before the writer's thread")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    value = make(args.kind, args.mb * 10**6)
    where = "on the loop" if args.on_loop else "on the writer's thread"
    for run in range(args.runs):
        longest, written = asyncio.run(one_run(value, args.codec, args.on_loop))
        print(f"run {run + 1}: {args.kind} {args.mb} MB, {args.codec}, written {where}: "
              f"longest loop stall {longest * 1000:.0f} ms, file whole after {written:.2f} s")


if __name__ == "__main__":
    main()
