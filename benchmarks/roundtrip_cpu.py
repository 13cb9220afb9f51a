"""CPU time per round trip in each process: client, center, workers.

On a shared machine the wall time of a round trip mostly measures the other work (a round trip
wakes four processes in turn, and each waits for a core); the CPU each process spends per
round trip is what dist can change, and is much steadier. Each run starts ``dcenter`` and two
``dworker --no-nanny``, then a client process that warms up, does N sequential
``submit(inc, i).result()`` (``latency``), a chain of N tasks (``chain``) or one ``map`` of N
tasks gathered (``map``), and reports its own
CPU time; the center's and the workers' are read from the system around the timed part. In
``chain`` mode it then counts, from the links' stories, the links that started on the worker
the moment their input finished there (``started_on_worker``, of N - 1).

    python benchmarks/roundtrip_cpu.py [--mode latency|chain|map] [--n 500] [--runs 3]

Prints each run and the medians (µs per round trip, or per task of the chain or the map).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import psutil
from procs import bare_cluster, stop_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

CLIENT = r'''
import json, sys, time
import bench_tasks as t
from dist_client import Executor
ex = Executor(sys.argv[1])
n, mode = int(sys.argv[2]), sys.argv[3]
for i in range(50):
    ex.submit(t.inc, -i - 1).result()
print("GO", flush=True)
sys.stdin.readline()
cpu, wall = time.process_time(), time.perf_counter()
if mode == "latency":
    for i in range(n):
        assert ex.submit(t.inc, i).result() == i + 1
elif mode == "map":
    assert ex.gather(ex.map(t.inc, range(n))) == list(range(1, n + 1))
else:
    future = ex.submit(t.inc, 10**9)
    keys = [future.key]
    for _ in range(n - 1):
        future = ex.submit(t.inc, future)
        keys.append(future.key)
    assert future.result() == 10**9 + n
print("RESULT " + json.dumps([time.perf_counter() - wall, time.process_time() - cpu]), flush=True)
sys.stdin.readline()
if mode == "chain":
    # Links that started on the worker the moment their input finished there (sent ahead),
    # not on a compute-task from the center.
    local = {e["key"] for e in ex.story(*keys[1:], timeout=120)
             if e["worker"] and e["start"] == "waiting" and e["finish"] == "ready"
             and e["stimulus_id"].startswith(("task-succeeded", "inline-run"))}
    print("STARTS " + json.dumps(len(local)), flush=True)
ex.close()
'''


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def one_run(mode: str, n: int, env: dict[str, str]) -> dict[str, float]:
    procs: list[subprocess.Popen] = []
    try:
        address = bare_cluster(BIN, env, procs)
        client = subprocess.Popen([sys.executable, "-c", CLIENT, address, str(n), mode],
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        procs.append(client)
        if client.stdout.readline().strip() != "GO":
            raise RuntimeError("the client did not start")
        servers = procs[:3]  # the center and the two workers
        before = [cpu_seconds(p.pid) for p in servers]
        client.stdin.write("\n")
        client.stdin.flush()
        line = client.stdout.readline()
        if not line.startswith("RESULT "):
            raise RuntimeError(f"the client failed: {line!r}")
        wall, client_cpu = json.loads(line[len("RESULT "):])
        after = [cpu_seconds(p.pid) for p in servers]
        client.stdin.write("\n")
        client.stdin.flush()
        starts = None
        if mode == "chain":
            line = client.stdout.readline()
            if line.startswith("STARTS "):
                starts = json.loads(line[len("STARTS "):])
        client.wait(60)
    finally:
        stop_all(procs)
    spent = [a - b for a, b in zip(after, before)]
    run = {"wall_us": wall / n * 1e6, "client_us": client_cpu / n * 1e6,
           "center_us": spent[0] / n * 1e6, "workers_us": sum(spent[1:]) / n * 1e6}
    if starts is not None:
        run["started_on_worker"] = starts  # of the n - 1 links after the first
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["latency", "chain", "map"], default="latency")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    runs = []
    for _ in range(args.runs):
        run = one_run(args.mode, args.n, env)
        runs.append(run)
        print({name: round(value) for name, value in run.items()},
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    medians = {name: round(statistics.median(run[name] for run in runs)) for name in runs[0]}
    print(f"median of {len(runs)} ({args.mode}, n={args.n}, µs):", medians)
    return 0


if __name__ == "__main__":
    sys.exit(main())
