"""What a state directory costs: the 10,000-task map of ``run.py`` (``throughput_large`` at
``--quick`` size) against a center with and without ``--state-dir``, alternating, on the
same cluster shape (one center, two single-threaded workers, one client, all local).

    python benchmarks/durable.py [--n 10000] [--rounds 5]

Prints tasks per second and the center's CPU time for the map, for each round and their
medians (CPU time is the steadier figure on a busy machine); the center with a state directory
journals every submit (payloads included) and fsyncs once per turn of its event loop.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import psutil
from dist_client import Executor


def inc(x):
    return x + 1


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split()[-1]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def one_round(n: int, state_dir: str | None) -> tuple[float, float]:
    center_args = [sys.executable, "-m", "dist_center.cli", "--host", "127.0.0.1", "--port",
                   "0", "--no-dashboard"]
    if state_dir is not None:
        center_args += ["--state-dir", state_dir]
    center, address = start(center_args)
    workers = [start([sys.executable, "-m", "dist_worker.cli", address, "--nthreads", "1",
                      "--no-nanny", "--name", f"w{i}"])[0] for i in range(2)]
    try:
        with Executor(address) as ex:
            while len(ex.ncores()) < 2:
                time.sleep(0.05)
            ex.gather(ex.map(inc, range(-200, 0)))
            cpu = cpu_seconds(center.pid)
            begin = time.perf_counter()
            futures = ex.map(inc, range(n))
            results = ex.gather(futures)
            elapsed = time.perf_counter() - begin
            assert results[-1] == n
            return n / elapsed, cpu_seconds(center.pid) - cpu
    finally:
        for proc in [*workers, center]:
            proc.terminate()
        for proc in [*workers, center]:
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plain, durable, plain_cpu, durable_cpu = [], [], [], []
    for _ in range(args.rounds):
        rate, cpu = one_round(args.n, None)
        plain.append(rate)
        plain_cpu.append(cpu)
        with tempfile.TemporaryDirectory() as state_dir:
            rate, cpu = one_round(args.n, state_dir)
        durable.append(rate)
        durable_cpu.append(cpu)
        print(f"in memory {plain[-1]:6.0f} tasks/s, center CPU {plain_cpu[-1]:5.2f} s   "
              f"--state-dir {durable[-1]:6.0f} tasks/s, center CPU {durable_cpu[-1]:5.2f} s",
              flush=True)
    a, b = statistics.median(plain), statistics.median(durable)
    ca, cb = statistics.median(plain_cpu), statistics.median(durable_cpu)
    print(f"median: in memory {a:.0f} tasks/s, --state-dir {b:.0f} tasks/s ({(b - a) / a:+.1%}); "
          f"center CPU {ca:.2f} s and {cb:.2f} s ({(cb - ca) / ca:+.1%})")

if __name__ == "__main__":
    main()
