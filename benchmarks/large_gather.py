"""What gathering one large result costs the client: its peak resident memory above what it
held before, the wall time, and (dist) the worker's longest event-loop stall meanwhile.

    python benchmarks/large_gather.py --mb 1024 --runs 3 --json gather.json
    python benchmarks/large_gather.py --mb 1024 --runs 3 --system dask --json gather-dask.json

Starts a center (dask: a scheduler) and one worker with one thread and no nanny; each run a
task makes ``--mb`` megabytes of ``--kind`` on the worker (``bytes``: os.urandom, ``array``:
float64 noise), then the client gathers it while a thread samples the client's resident
memory from ``/proc/self/statm`` every 2 ms. The dist worker carries ``large_arguments.py``'s
loop probe (every stall past ``--report`` ms). Every run's figures go to ``--json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from large_arguments import start_probed, stalls
from large_servers import start, wait_line

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 2**20


def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakSampler:
    def __init__(self) -> None:
        self.peak = resident()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, resident())

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return max(self.peak, resident())


def make_value(kind: str, nbytes: int):
    if kind == "bytes":
        import os as os_
        return os_.urandom(nbytes)
    import numpy
    return numpy.random.default_rng(0).random(nbytes // 8)


def size_of(value) -> int:
    return value.nbytes if hasattr(value, "nbytes") else len(value)


def servers(system: str, report: float, lines: list[list[str]]) -> tuple[str, list]:
    center_lines, worker_lines = lines
    if system == "dist":
        center = start_probed(["dcenter", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard"], center_lines, report)
        address = wait_line(center_lines, r"Start center at (\S+)").group(1)
        worker = start_probed(["dworker", address, "--host", "127.0.0.1", "--nthreads", "1",
                               "--no-nanny"], worker_lines, report)
        wait_line(worker_lines, "Registered with center")
        return address, [center, worker]
    bindir = os.path.dirname(sys.executable)
    center = start([os.path.join(bindir, "dask"), "scheduler", "--host", "127.0.0.1",
                    "--port", "0", "--no-dashboard"], center_lines)
    address = wait_line(center_lines, r"Scheduler at:\s+(\S+)").group(1)
    worker = start([os.path.join(bindir, "dask"), "worker", address, "--nthreads", "1",
                    "--no-nanny", "--memory-limit", "0"], worker_lines)
    wait_line(worker_lines, "Registered to")
    return address, [center, worker]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--kind", default="bytes", choices=("bytes", "array"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--system", default="dist", choices=("dist", "dask"))
    parser.add_argument("--report", type=float, default=300.0, help="ms")
    parser.add_argument("--json", help="file for every run's figures")
    args = parser.parse_args()
    lines: list[list[str]] = [[], []]
    address, procs = servers(args.system, args.report / 1000, lines)
    runs = []
    try:
        if args.system == "dist":
            from dist_client import Executor as Client
        else:
            from distributed import Client  # type: ignore[no-redef]
        with Client(address) as client:
            for run in range(args.runs):
                future = client.submit(make_value, args.kind, args.mb * MB, pure=False)
                client.submit(size_of, future).result()  # (made and held before the gather)
                stalls_before = len(stalls(lines[1]))
                before = resident()
                sampler = PeakSampler()
                began = time.perf_counter()
                value = future.result()
                took = time.perf_counter() - began
                peak = sampler.stop()
                assert size_of(value) == args.mb * MB
                del value, future
                time.sleep(0.3)  # (the probe's report of a stall as the value went)
                found = stalls(lines[1])[stalls_before:]
                runs.append({"run": run, "seconds": round(took, 3),
                             "client_peak_above_before_mb": round((peak - before) / MB, 1),
                             "worker_stalls_ms": [ms for ms, _ in found],
                             "load": os.getloadavg()[0]})
                print(json.dumps(runs[-1]), flush=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    summary = {"system": args.system, "mb": args.mb, "kind": args.kind,
               "median_seconds": statistics.median(r["seconds"] for r in runs),
               "median_client_peak_above_before_mb": statistics.median(
                   r["client_peak_above_before_mb"] for r in runs),
               "runs": runs, "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=1)


if __name__ == "__main__":
    main()
