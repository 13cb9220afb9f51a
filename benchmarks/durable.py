"""What a state directory costs: the 10,000-task map of ``run.py`` (``throughput_large`` at
``--quick`` size) against a center with and without ``--state-dir``, alternating, on the
same cluster shape (one center, two single-threaded workers, one client, all local).

    python benchmarks/durable.py [--n 10000] [--rounds 5]

Prints tasks per second for each round and the medians; the center with a state directory
journals every submit (payloads included) and fsyncs once per turn of its event loop.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from dist_client import Executor


def inc(x):
    return x + 1


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split()[-1]


def one_round(n: int, state_dir: str | None) -> float:
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
            begin = time.perf_counter()
            futures = ex.map(inc, range(n))
            results = ex.gather(futures)
            elapsed = time.perf_counter() - begin
            assert results[-1] == n
            return n / elapsed
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
    plain, durable = [], []
    for _ in range(args.rounds):
        plain.append(one_round(args.n, None))
        with tempfile.TemporaryDirectory() as state_dir:
            durable.append(one_round(args.n, state_dir))
        print(f"in memory {plain[-1]:8.0f} tasks/s   --state-dir {durable[-1]:8.0f} tasks/s",
              flush=True)
    a, b = statistics.median(plain), statistics.median(durable)
    print(f"median: in memory {a:.0f} tasks/s, --state-dir {b:.0f} tasks/s "
          f"({(b - a) / a:+.1%})")


if __name__ == "__main__":
    main()
