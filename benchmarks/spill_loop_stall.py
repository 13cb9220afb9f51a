"""How long one large value's spill, or its read back, holds a worker's event loop.

    python benchmarks/spill_loop_stall.py --mb 400 --kind compressible --codec lz4
    python benchmarks/spill_loop_stall.py --mb 400 --kind compressible --codec zstd --read

Stores one value past a worker store's target on a running event loop, with the store's
large writes on the loop (``--on-loop``, as before they moved) or on the writer's thread
(the default), while a ticker on the loop wakes every 10 ms; prints the longest gap between
two ticks (what a heartbeat, a peer or an inline task would wait) and the time until the
value's file is whole. With ``--read``, the value is spilled first, then read back for a
task as the worker reads it: on the loop (``--on-loop``: ``store[key]``, as the worker's
state read a task's inputs before) or its file read and unpickled on a thread
(``make_room_for``, ``read_value``, ``restore``, as the worker does now); the stall and the
time until the value is back are printed. ``--room MB``: with ``--read``, that many megabytes
of other values (25 MB each, small enough that a spill on the loop wrote them there) fill the
target beside the spilled value, so that room is made for it by writing them first: on the
loop (``--on-loop``), or, as the worker makes it now, on the writer's thread (on a tree
before that, ``prepare_read`` on the loop). ``--kind``: ``random`` (float64 noise),
``compressible`` (small whole numbers as floats), ``bytes`` (os.urandom). Repeats
``--runs`` times, each in a fresh store.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

TICK = 0.01
ROOM_PIECE = 25  # MB: each of the values that make room (``--room``)


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


async def room_then_read(store, key: str):
    """The worker's read of a task's input on a thread: room made, the file read, the value
    back in the store."""
    loop = asyncio.get_running_loop()
    if hasattr(store, "make_room_for"):
        room = loop.create_future()
        store.make_room_for(key, lambda: room.done() or room.set_result(None))
        await room
    else:
        store.prepare_read(key)  # (a tree before the room was made on the writer's thread)
    back, size = await loop.run_in_executor(None, store.read_value, key)
    return store.restore(key, back, size)


async def one_run(value, codec: str, on_loop: bool, read: bool, room: int,
                  kind: str) -> tuple[float, float]:
    from dist_worker.spillwriter import SpillWriter
    from dist_worker.store import DataStore

    with tempfile.TemporaryDirectory() as directory:
        nbytes = value.nbytes if hasattr(value, "nbytes") else len(value)
        store = DataStore(target=nbytes + 2**20 if room else 10 * 2**20, directory=directory,
                          spill_compression=codec,
                          writer=None if on_loop and not read else SpillWriter())
        if read:
            store["value"] = value
            for i in range(room // ROOM_PIECE):  # (the value, least recently used, spills)
                store[f"other-{i}"] = make(kind, ROOM_PIECE * 10**6)
            while not store.on_disk("value"):
                await asyncio.sleep(TICK)
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
        if read and on_loop:
            back = store["value"]
        elif read:
            back = await room_then_read(store, "value")
        else:
            store["value"] = value
            while not store.on_disk("value"):
                await asyncio.sleep(TICK)
        written = time.perf_counter() - start
        if read:
            assert len(back) == len(value)
            del back
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
                        help="write (or read back) on the loop, as before")
    parser.add_argument("--read", action="store_true",
                        help="measure a task's read back of the spilled value, not its write")
    parser.add_argument("--room", type=int, default=0,
                        help="with --read: MB of other values to write first to make room")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    value = make(args.kind, args.mb * 10**6)
    where = "on the loop" if args.on_loop else ("on a thread" if args.read
                                                else "on the writer's thread")
    done = "read back" if args.read else "written"
    for run in range(args.runs):
        longest, took = asyncio.run(one_run(value, args.codec, args.on_loop, args.read,
                                            args.room, args.kind))
        print(f"run {run + 1}: {args.kind} {args.mb} MB, {args.codec}, {done} {where}: "
              f"longest loop stall {longest * 1000:.0f} ms, "
              f"{'back in memory' if args.read else 'file whole'} after {took:.2f} s")


if __name__ == "__main__":
    main()
