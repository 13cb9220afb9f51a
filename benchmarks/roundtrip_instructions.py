"""Instructions per round trip (or per link of a chain) in each process of a live cluster.

Starts ``dcenter`` (on the C library's allocator, as ``dcenter`` runs, unless ``PYTHONMALLOC``
says otherwise), two ``dworker --no-nanny`` and a client, each under ``valgrind
--tool=callgrind`` with counting switched off; once the client has warmed up, counting is
switched on in every process, the counters are zeroed, the client runs N round trips
(``submit(inc, i).result()``, one at a time, or a chain of N links) and every process dumps its
count; then the same for 3N. The difference of the two dumps divided by 2N is what a round trip
costs each process, whatever the load of a shared machine (timers firing during the run --
heartbeats, the memory monitor -- are the noise that is left: a few per cent).

Under valgrind a round trip lasts tens of milliseconds, which changes two paths that depend on
time: the client's releases would go on their own timer (5 ms) rather than with the next
submit, so the client here waits a second before sending them on its own; and a worker runs
every task on its thread pool (each run looks slow), so its count is that of the pool's path,
not the inline one of a real run.

    python benchmarks/roundtrip_instructions.py [--mode latency|chain] [--n 100]
        [--functions 15]

Prints each process's instructions per round trip; with ``--functions K``, the K C functions
whose counts grew most per round trip (``callgrind_annotate``), for each process.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procs import bare_cluster, stop_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PROCESSES = ("center", "w0", "w1", "client")

CLIENT = r'''
import sys
import bench_tasks as t
import dist_client.core.release_timer as release_timer
from dist_client import Executor
# (see the module's doc: releases ride with the next submit)
release_timer.SHORTEST = release_timer.LONGEST = 1.0
ex = Executor(sys.argv[1])
mode = sys.argv[2]
for i in range(20):
    ex.submit(t.inc, -i - 1).result()
print("READY", flush=True)
for line in sys.stdin:
    n = int(line)
    if mode == "latency":
        for i in range(n):
            assert ex.submit(t.inc, i).result() == i + 1
    else:
        future = ex.submit(t.inc, 10**9)
        for _ in range(n - 1):
            future = ex.submit(t.inc, future)
        assert future.result() == 10**9 + n
        del future
    print("DONE", flush=True)
ex.close()
'''


def under_callgrind(argv: list[str], out: Path, name: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out}/cg-{name}.%p", *argv]


def control(pids: list[int], *args: str) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", *args, str(pid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def total(path: str) -> int:
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"no total in {path}")


def functions(path: str) -> dict[str, int]:
    text = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    out = {}
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*:.*)$", line)
        if match:
            out[match.group(2).strip()] = int(match.group(1).replace(",", ""))
    return out


def short_name(function: str) -> str:
    """``file:function [object]`` as ``function (file's name)``."""
    where, _, name = function.partition(" [")[0].rpartition(":")
    return f"{name} ({where.rsplit('/', 1)[-1]})"


def run(mode: str, n: int, out: Path) -> None:
    # One hash seed for every process and run: dicts and sets probe alike, and counts repeat.
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    procs: list[subprocess.Popen] = []
    try:
        address = bare_cluster(
            BIN, env, procs, lambda command, role: under_callgrind(command, out, role),
            center_env=dict(env, PYTHONMALLOC=os.environ.get("PYTHONMALLOC", "malloc")))
        client = subprocess.Popen(
            under_callgrind([sys.executable, "-c", CLIENT, address, mode], out, "client"),
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        procs.append(client)
        assert client.stdin is not None and client.stdout is not None
        if client.stdout.readline().strip() != "READY":
            raise RuntimeError("the client did not start")
        pids = [p.pid for p in procs]
        control(pids, "-i", "on")
        for count in (n, 3 * n):
            control(pids, "-z")
            client.stdin.write(f"{count}\n")
            client.stdin.flush()
            if client.stdout.readline().strip() != "DONE":
                raise RuntimeError("the client failed")
            control(pids, "-d")
        client.stdin.close()
        client.wait(300)
    finally:
        stop_all(procs, grace=300)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["latency", "chain"], default="latency")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--functions", type=int, default=0)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="dist-instructions-") as tmp:
        out = Path(tmp)
        run(args.mode, args.n, out)
        unit = "round trip" if args.mode == "latency" else "link"
        dumps = {name: sorted(glob.glob(f"{out}/cg-{name}.*.[12]")) for name in PROCESSES}
        missing = [name for name, found in dumps.items() if len(found) != 2]
        if missing:
            print(f"no counts from {', '.join(missing)}", file=sys.stderr)
            return 1
        # Which worker runs the tasks may change between the two parts: the workers are
        # counted together.
        groups = {"center": ["center"], "workers": ["w0", "w1"], "client": ["client"]}
        summed = 0.0
        for group, names in groups.items():
            per = sum(total(dumps[name][1]) - total(dumps[name][0])
                      for name in names) / (2 * args.n)
            summed += per
            print(f"{group:8s} {per:11,.0f} instructions a {unit}")
            if args.functions:
                grown: dict[str, float] = {}
                for name in names:
                    before, after = functions(dumps[name][0]), functions(dumps[name][1])
                    for function in set(before) | set(after):
                        short = short_name(function)
                        grown[short] = grown.get(short, 0.0) + (
                            after.get(function, 0) - before.get(function, 0)) / (2 * args.n)
                for function, count in sorted(grown.items(), key=lambda item: -item[1])[
                        :args.functions]:
                    print(f"         {count:9,.0f}  {function}")
        print(f"{'all':8s} {summed:11,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
