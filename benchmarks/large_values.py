"""One large value near a worker's memory limit: the peak memory of each process it passes.

    python benchmarks/large_values.py --kind random --mb 250 --limit 300MB
    python benchmarks/large_values.py --kind bytes --mb 250 --limit 4GB --to peer,client

Starts a center and a worker under a nanny (two threads, ``--memory-limit``), has the worker
make one value (``random``: float64 noise, ``ones``: np.ones, ``bytes``: os.urandom,
``compressible``: small whole numbers as floats, ``frame``: a one-column DataFrame of noise),
then a task on it there (``--to worker``, the default: spilled first when it is past the
target), on a second worker without a nanny (``peer``) or gathers it (``client``). Resident
memory of every process is sampled from /proc every 3 ms; it prints each peak, the wall
time, and how many times the worker registered (more than once: restarted by its memory).
``--fractions T,S,P,K`` sets the worker's target, spill, pause and terminate fractions;
``--read-seconds S`` has the reading task hold the value that long; ``--hold S`` keeps the
client, and so its futures, S seconds longer before it closes: a value lost with a restart is
made again meanwhile, and may restart the worker again.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cloudpickle
import large_servers
from large_servers import make, start, wait_line

PAGE = os.sysconf("SC_PAGE_SIZE")
RESULT_TIMEOUT = 300.0


def describe(value, seconds: float = 0.0) -> tuple:
    time.sleep(seconds)  # (a long task on the value: it holds the value meanwhile)
    if isinstance(value, bytes):
        return "bytes", len(value), value[:4].hex()
    if hasattr(value, "columns"):
        return "frame", int(value.memory_usage().sum()), float(value["a"].iloc[:100].sum())
    return "ndarray", value.nbytes, float(value[:100].sum())


def sample(pids: dict[str, int], peaks: dict[str, int], done: threading.Event) -> None:
    import psutil
    while not done.is_set():
        for name, pid in list(pids.items()):
            try:
                # (the nanny's worker process is its child; the client's are the servers)
                procs = [pid] + ([c.pid for c in psutil.Process(pid).children()]
                                 if name == "worker" else [])
                for each in procs:
                    with open(f"/proc/{each}/statm") as statm:
                        rss = int(statm.read().split()[1]) * PAGE
                    peaks[name] = max(peaks.get(name, 0), rss)
            except (OSError, psutil.Error):
                continue
        done.wait(0.003)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="random",
                        choices=("random", "ones", "compressible", "bytes", "frame"))
    parser.add_argument("--mb", type=int, default=250)
    parser.add_argument("--limit", default="300MB")
    parser.add_argument("--to", default="worker", help="worker, peer, client (comma-separated)")
    parser.add_argument("--fractions", default="",
                        help="target,spill,pause,terminate fractions of the worker's limit")
    parser.add_argument("--read-seconds", type=float, default=0.0,
                        help="seconds the reading task holds the value")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds the client keeps its futures after the results")
    args = parser.parse_args()
    from dist_client import Executor

    servers, peaks = [], {}
    pids = {"client": os.getpid()} if "client" in args.to else {}
    center_lines: list[str] = []
    worker_lines: list[str] = []
    try:
        servers.append(start(["dcenter", "--host", "127.0.0.1", "--port", "0",
                              "--no-dashboard"], center_lines))
        address = wait_line(center_lines, r"Start center at (\S+)").group(1)
        fractions = [arg for name, value in zip(("target", "spill", "pause", "terminate"),
                                                args.fractions.split(",") if args.fractions
                                                else ())
                     for arg in (f"--memory-{name}-fraction", value)]
        worker = start(["dworker", address, "--host", "127.0.0.1", "--nthreads", "2", "--nanny",
                        "--memory-limit", args.limit, *fractions], worker_lines)
        servers.append(worker)
        pids["worker"] = worker.pid
        maker = wait_line(worker_lines, r"Start worker at (\S+)").group(1)
        wait_line(worker_lines, "Registered with center")
        if "peer" in args.to:
            peer_lines: list[str] = []
            peer = start(["dworker", address, "--host", "127.0.0.1", "--nthreads", "2",
                          "--no-nanny", "--memory-limit", args.limit], peer_lines)
            servers.append(peer)
            pids["peer"] = peer.pid
            reader = wait_line(peer_lines, r"Start worker at (\S+)").group(1)
            wait_line(peer_lines, "Registered with center")
        done = threading.Event()
        threading.Thread(target=sample, args=(pids, peaks, done), daemon=True).start()
        with Executor(address) as executor:
            began = time.monotonic()
            # Pinned to the nanny's worker only beside a peer: a worker the nanny starts again
            # listens elsewhere, and a task pinned to the old address would wait for ever.
            pinned = {"workers": [maker]} if "peer" in args.to else {}
            # (the workers cannot import this folder's modules: ``make`` goes by value)
            cloudpickle.register_pickle_by_value(large_servers)
            value = executor.submit(make, args.kind, args.mb * 10**6, **pinned)
            results = {}
            try:
                if "worker" in args.to:
                    results["worker"] = executor.submit(
                        describe, value, args.read_seconds, **pinned).result(
                        timeout=RESULT_TIMEOUT)
                if "peer" in args.to:
                    results["peer"] = executor.submit(describe, value, workers=[reader]).result(
                        timeout=RESULT_TIMEOUT)
                if "client" in args.to:
                    results["client"] = describe(value.result(timeout=RESULT_TIMEOUT))
            except Exception as exc:  # noqa: BLE001 -- reported, as the outcome
                results["error"] = f"{type(exc).__name__}: {exc}"[:200]
            wall = time.monotonic() - began
            time.sleep(args.hold)  # (the futures still held: what a restart loses is made again)
        done.set()
        print(f"{args.kind} {args.mb} MB, --memory-limit {args.limit}: {wall:.2f} s, "
              f"{results}")
        print("peak RSS MB: " + ", ".join(f"{name} {peak / 1e6:.0f}"
                                          for name, peak in peaks.items()))
        print("worker registrations:", sum("Registered with center" in line
                                           for line in worker_lines))
        for line in worker_lines:
            if "restart" in line:
                print("  worker:", line.rstrip()[:160])
    finally:
        for proc in reversed(servers):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
