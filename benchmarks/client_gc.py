"""The client's cyclic garbage collector during a map: collections, their CPU, objects per key.

Starts ``dcenter`` and two ``dworker --no-nanny``; the client (this process) warms up, then
maps ``inc`` over N numbers and gathers them, timing every collection of the collector in the
CPU time of the thread it runs on (``gc.callbacks``), and counts, by type, the objects the
collector tracks after the map less before it, per key held. On a long map the collector's
full passes walk every object the client holds, a growing count of keys among them: each
object a key keeps is paid for on each pass.

    python benchmarks/client_gc.py [--n 40000] [--runs 3]

Prints, per run: collections and their CPU by generation, the objects of the last full
pass, the tracked objects per key by type, and the client's CPU for the map and gather.
"""
from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import time
from pathlib import Path

from procs import bare_cluster, stop_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def one_run(n: int) -> dict:
    import threading

    import bench_tasks as t
    from dist_client import Executor

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    procs: list = []
    try:
        address = bare_cluster(BIN, env, procs)
        with Executor(address) as ex:
            ex.gather(ex.map(t.inc, range(-100, 0)))
            gc.collect()
            before = collections.Counter(type(o).__name__ for o in gc.get_objects())
            spent = collections.defaultdict(float)
            counts: collections.Counter = collections.Counter()
            last_full = [0]
            started = {}

            def timed(phase: str, info: dict) -> None:
                me = threading.get_ident()
                if phase == "start":
                    if info["generation"] == 2:  # (counted before its clock starts)
                        last_full[0] = sum(len(gc.get_objects(g)) for g in range(3))
                    started[me] = time.thread_time()
                    return
                spent[info["generation"]] += time.thread_time() - started.pop(me, 0.0)
                counts[info["generation"]] += 1

            gc.callbacks.append(timed)
            cpu = time.process_time()
            try:
                futures = ex.map(t.inc, range(n))
                assert ex.gather(futures) == list(range(1, n + 1))
            finally:
                gc.callbacks.remove(timed)
            cpu = time.process_time() - cpu
            after = collections.Counter(type(o).__name__ for o in gc.get_objects())
            per_key = {name: round(count / n, 3) for name, count in (after - before).items()
                       if count / n >= 0.01}
            del futures
    finally:
        stop_all(procs)
    return {"collections": [counts[g] for g in range(3)],
            "collector_s": [round(spent[g], 3) for g in range(3)],
            "last_full_pass_objects": last_full[0], "tracked_per_key": per_key,
            "client_cpu_s": round(cpu, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    for _ in range(args.runs):
        run = one_run(args.n)
        print(run, f"collector {sum(run['collector_s']):.3f} s",
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
