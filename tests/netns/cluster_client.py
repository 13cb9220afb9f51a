"""The client side of the network tests, run inside the client's host:

    python cluster_client.py SCENARIO CONFIG_JSON

CONFIG_JSON names the center, the workers ({name: address}) and their hosts ({name: ip}), plus
options of the scenario. Each phase prints one ``RESULT {json}`` line; ``PROGRESS n`` lines say
how far a long run is, so the test knows when to cut a link. A failure prints
``RESULT {"error": ..., "message": ...}`` and exits with 1. The token comes from DIST_TOKEN.

The task functions below reach the workers by value: this file runs as ``__main__``, which the
workers cannot import.
"""
from __future__ import annotations

import collections
import json
import random
import socket
import sys
import time

from dist_client import Executor, as_completed

RESULT_TIMEOUT = 120  # seconds; generous, so only a real hang (not a slow link) trips it


def where(*inputs, **options) -> str:
    """The address of the host this runs on (the source address towards the test subnet;
    a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.18.0.254", 9))
        return probe.getsockname()[0]


def inc(x):
    return x + 1


def double(x):
    return 2 * x


def slow_square(x, delay=0.2):
    time.sleep(delay)
    return [x * x, where()]


def size_and_where(*inputs):
    return [sum(len(i) for i in inputs), where()]


def slow_size_and_where(data, delay):
    time.sleep(delay)
    return [len(data), where()]


def block(i, size):
    return incompressible(size, seed=i)


def incompressible(size, seed=0):
    """Random bytes: frames between hosts are compressed when that pays, and these scenarios
    measure what crosses a link, so their data must not shrink on the way."""
    return random.Random(seed).randbytes(size)


def report(**result) -> None:
    print("RESULT " + json.dumps(result), flush=True)


# -- scenarios ------------------------------------------------------------------------------
def walkthrough(e: Executor, config: dict) -> None:
    """The README's walkthrough, plus where things ran."""
    future = e.submit(inc, 1)
    report(inc=future.result(timeout=RESULT_TIMEOUT), key=future.key,
           same_key=e.submit(inc, 1).key == future.key,
           map=e.gather(e.map(inc, range(5))),
           chain=e.submit(double, e.submit(inc, 1)).result(timeout=RESULT_TIMEOUT),
           sum=e.submit(sum, e.map(double, range(10))).result(timeout=RESULT_TIMEOUT),
           scatter=e.gather(e.scatter([1, 2, 3])),
           workers=sorted(e.ncores()),
           ran_on=sorted({host for _, host in e.gather(e.map(slow_square, range(8)))}))


def pinned(e: Executor, config: dict) -> None:
    """Data scattered to one worker, consumed by a task pinned to another."""
    [data] = e.scatter([incompressible(config["size"])], workers=[config["holder"]])
    held_by = e.who_has(data)[data.key]
    nbytes, ran_on = e.submit(size_and_where, data, workers=[config["runner"]]).result(
        timeout=RESULT_TIMEOUT)
    report(held_by=held_by, nbytes=nbytes, ran_on=ran_on,
           held_by_after=sorted(e.who_has(data)[data.key]))


def gather_many(e: Executor, config: dict) -> None:
    """Blocks made on every worker, gathered in one call."""
    names, size, count = list(config["workers"]), config["size"], config["count"]
    futures = [e.submit(block, i, size, workers=[names[i % len(names)]]) for i in range(count)]
    values = e.gather(futures)
    holders = collections.Counter()
    for addresses in e.who_has(futures).values():
        holders.update(addresses)
    report(correct=[v == block(i, size) for i, v in enumerate(values)],
           holders=dict(holders))


def map_through_partition(e: Executor, config: dict) -> None:
    """A long map whose progress the test watches (to cut a link meanwhile); then, for each
    ``again`` read from stdin, one task pinned to each worker and the workers the center
    knows; ``exit`` ends it."""
    count, delay = config["count"], config["delay"]
    futures = e.map(slow_square, range(count), delay=delay)
    print("SUBMITTED", flush=True)
    for done, future in enumerate(as_completed(futures), 1):
        future.result(timeout=RESULT_TIMEOUT)
        print(f"PROGRESS {done}", flush=True)
    results = e.gather(futures)
    report(squares=[square for square, _ in results],
           ran_on=dict(collections.Counter(host for _, host in results)))
    for line in sys.stdin:
        if line.strip() == "exit":
            break
        ran_on = {name: e.submit(where, name, pure=False, workers=[name]).result(
            timeout=RESULT_TIMEOUT) for name in config["workers"]}
        # The first results again, from whoever holds them now (a returning worker may).
        again = e.gather(futures)
        holders = collections.Counter()
        for addresses in e.who_has(futures).values():
            holders.update(addresses)
        report(ran_on=ran_on, workers=sorted(e.ncores()),
               squares=e.gather(e.map(lambda x: x * x, range(count))),
               first_squares_again=[square for square, _ in again], holders=dict(holders))


def slow_link(e: Executor, config: dict) -> None:
    """A big input on the worker behind the slow link: tasks go to it rather than move it,
    and moving it anyway (a pinned task, a gather) is slow but does not time out."""
    fast, slow, size = config["fast"], config["slow"], config["size"]
    timings = {}
    start = time.monotonic()
    [big] = e.scatter([incompressible(size)], workers=[slow])
    timings["scatter to slow"] = time.monotonic() - start
    [small] = e.scatter([b"y" * 1000], workers=[fast])
    placed = [e.submit(size_and_where, big, pure=False).result(timeout=RESULT_TIMEOUT)[1]
              for _ in range(3)]
    # Inputs on both: the big one should stay where it is.
    placed.append(e.submit(size_and_where, big, small).result(timeout=RESULT_TIMEOUT)[1])
    # More at once than the slow worker has threads: waiting for a thread there (1 s) still
    # beats moving the input (seconds).
    start = time.monotonic()
    busy = [e.submit(slow_size_and_where, big, 0.5, pure=False) for _ in range(4)]
    placed_concurrently = [f.result(timeout=RESULT_TIMEOUT)[1] for f in busy]
    timings["busy slow worker"] = time.monotonic() - start
    start = time.monotonic()
    moved = e.submit(size_and_where, big, workers=[fast]).result(timeout=RESULT_TIMEOUT)
    timings["move to fast"] = time.monotonic() - start
    start = time.monotonic()
    squares = e.gather(e.map(slow_square, range(20), delay=0.05))
    timings["small map"] = time.monotonic() - start
    start = time.monotonic()
    fetched = len(e.submit(block, 7, size // 2, workers=[slow]).result(timeout=RESULT_TIMEOUT))
    timings["gather from slow"] = time.monotonic() - start
    report(placed_on=placed, placed_concurrently=placed_concurrently, moved=moved,
           squares=[s for s, _ in squares], squares_ran_on=sorted({h for _, h in squares}),
           fetched=fetched, timings=timings, workers=sorted(e.ncores()))


SCENARIOS = {f.__name__: f for f in (walkthrough, pinned, gather_many, map_through_partition,
                                     slow_link)}


def main() -> int:
    scenario, config = SCENARIOS[sys.argv[1]], json.loads(sys.argv[2])
    try:
        with Executor(config["center"], timeout=config.get("connect_timeout", 10)) as e:
            scenario(e, config)
    except Exception as exc:  # noqa: BLE001 -- the test asserts on what failed, so say it and exit
        report(error=type(exc).__name__, message=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
