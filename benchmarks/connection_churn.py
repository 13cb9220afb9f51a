"""RSS of a center and a worker across many short connections.

A long-lived cluster sees clients come and go all day. This starts a real ``dcenter`` and
``dworker`` (no nanny, so the worker's RSS is the process that holds the connections), takes
their idle RSS after a short warm-up, then runs ``--cycles`` connect/close cycles and reads the
RSS again every ``--report-every`` cycles. Each cycle is a plain handshake (alternately to the
center and to the worker) except every ``--session-every``-th, which is a whole client session:
``Executor(address)``, a submit, a gather (straight from the worker), close.

    python benchmarks/connection_churn.py                     # 10,000 cycles
    python benchmarks/connection_churn.py --cycles 2000 --session-every 1

Exits non-zero when either process ends more than ``--tolerance-mb`` (default 10) above its
idle figure.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
from dist_client import Executor
from dist_protocol.comm import connect

START_TIMEOUT = 60.0


def inc(x: int) -> int:
    return x + 1


def command(name: str) -> list[str]:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    found = beside if os.access(beside, os.X_OK) else shutil.which(name)
    if found is None:
        raise SystemExit(f"`{name}` not found: install the dist packages in this environment")
    return [found]


def start(argv: list[str], ready_prefix: str) -> tuple[subprocess.Popen, str]:
    """Start a server in its own session; returns it and the rest of its ``ready_prefix`` line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIST_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(ready_prefix):
            return proc, line[len(ready_prefix):].strip()
    stop(proc)
    raise SystemExit(f"{argv[0]} did not print {ready_prefix!r} within {START_TIMEOUT:g} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def handshake(address: str) -> None:
    comm = await connect(address, role="client")
    comm.close()
    await comm.closed


def session(address: str, i: int) -> None:
    with Executor(address) as executor:
        assert executor.gather(executor.submit(inc, i, pure=False)) == i + 1


def run_cycles(loop: asyncio.AbstractEventLoop, center: str, worker: str, first: int,
               count: int, session_every: int) -> None:
    for i in range(first, first + count):
        if session_every and i % session_every == 0:
            session(center, i)
        else:
            loop.run_until_complete(handshake(center if i % 2 else worker))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--session-every", type=int, default=10,
                        help="every Nth cycle is a client session that submits and gathers "
                             "(0: handshakes only)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--report-every", type=int, default=1_000)
    parser.add_argument("--tolerance-mb", type=float, default=10.0)
    args = parser.parse_args()

    center_proc, center = start(command("dcenter") + ["--host", "127.0.0.1", "--port", "0",
                                                      "--no-dashboard"], "Start center at ")
    worker_proc = None
    loop = asyncio.new_event_loop()
    try:
        worker_proc, worker = start(command("dworker") + [center, "--nthreads", "1",
                                                          "--no-nanny", "--name", "w1"],
                                    "Start worker at ")
        pids = {"center": center_proc.pid, "worker": worker_proc.pid}
        fresh = {role: rss_mb(pid) for role, pid in pids.items()}
        run_cycles(loop, center, worker, 0, args.warmup, args.session_every)
        time.sleep(1.0)  # let both servers finish with the last close before reading idle RSS
        idle = {role: rss_mb(pid) for role, pid in pids.items()}
        print(f"RSS MB       center   worker   ({args.cycles} cycles, a client session every "
              f"{args.session_every or 'never'}; fresh: center {fresh['center']:.1f}, "
              f"worker {fresh['worker']:.1f})")
        print(f"{'idle':>10} {idle['center']:8.1f} {idle['worker']:8.1f}")
        started = time.monotonic()
        done = 0
        while done < args.cycles:
            step = min(args.report_every, args.cycles - done)
            run_cycles(loop, center, worker, args.warmup + done, step, args.session_every)
            done += step
            now = {role: rss_mb(pid) for role, pid in pids.items()}
            print(f"{done:>10} {now['center']:8.1f} {now['worker']:8.1f}   "
                  f"({done / (time.monotonic() - started):.0f} cycles/s)", flush=True)
        time.sleep(1.0)
        after = {role: rss_mb(pid) for role, pid in pids.items()}
        growth = {role: after[role] - idle[role] for role in pids}
        print(f"{'after':>10} {after['center']:8.1f} {after['worker']:8.1f}")
        print(f"{'growth':>10} {growth['center']:+8.1f} {growth['worker']:+8.1f}   "
              f"(tolerance {args.tolerance_mb:g} MB)")
        return 0 if max(growth.values()) <= args.tolerance_mb else 1
    finally:
        loop.close()
        if worker_proc is not None:
            stop(worker_proc)
        stop(center_proc)


if __name__ == "__main__":
    sys.exit(main())
