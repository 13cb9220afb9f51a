"""Python bytecodes and calls per round trip in the center, the workers and the client.

Callgrind counts a process's instructions but, on Python 3.11, cannot say which Python function
ran them: every Python call runs inside one ``_PyEval_EvalFrameDefault``. This benchmark counts
what the interpreter itself is asked to do instead: each server runs with a ``sitecustomize``
that, on a signal, sets a trace function with ``f_trace_opcodes`` and counts the bytecodes run
in each function's own body, and its calls; the client runs N round trips (``submit(inc,
i).result()``, one at a time) between the two signals, counting its own two threads the same
way (a trace function set before its I/O thread starts). Counts, like instructions, do not move
with the machine's load (timers firing during the run -- heartbeats, the memory monitor -- are
the noise). Tracing slows the servers some tenfold, so only the counts mean anything.

    python benchmarks/roundtrip_bytecodes.py [--n 1000] [--top 40] [--mode latency|map]

``--mode map`` counts one ``map`` of N tasks and its ``gather`` instead, per task, in the
client alone (traced servers would answer in other batches than untraced ones do).

Prints, per process, the bytecodes and Python calls per round trip, their split by layer
(package and module), and the ``--top`` functions by bytecodes.
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procs import bare_cluster, stop_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
START, STOP = signal.SIGRTMIN + 2, signal.SIGRTMIN + 3  # (free in every process of a cluster)

SITECUSTOMIZE = r'''
import collections, os, signal, sys, threading
_out = os.environ["DIST_BYTECODES_OUT"]
_ops, _calls = collections.Counter(), collections.Counter()

def _trace(frame, event, arg):
    if event == "call":
        frame.f_trace_opcodes = True
        _calls[frame.f_code] += 1
    elif event == "opcode":
        _ops[frame.f_code] += 1
    return _trace

def _start(signum, frame):
    sys.settrace(_trace)
    threading.settrace(_trace)

def _stop(signum, frame):
    sys.settrace(None)
    threading.settrace(None)
    with open(f"{_out}.{os.getpid()}", "w") as f:
        for code, n in _ops.most_common():
            f.write(f"{n}\t{_calls[code]}\t{code.co_filename}\t{code.co_name}\n")

signal.signal(int(os.environ["DIST_BYTECODES_START"]), _start)
signal.signal(int(os.environ["DIST_BYTECODES_STOP"]), _stop)
'''

CLIENT = r'''
import collections, os, sys, threading
import bench_tasks as t
from dist_client import Executor
# The client counts itself, both its threads: a trace function set before the I/O thread
# starts (Python 3.11 cannot set one on a running thread), counting only around the loop.
ops, calls, counting = collections.Counter(), collections.Counter(), [False]

def trace(frame, event, arg):
    if not counting[0]:
        return None
    if event == "call":
        frame.f_trace_opcodes = True
        calls[frame.f_code] += 1
    elif event == "opcode":
        ops[frame.f_code] += 1
    return trace

sys.settrace(trace)
threading.settrace(trace)
ex = Executor(sys.argv[1])
for i in range(200):
    ex.submit(t.inc, -i - 1).result()
print("READY", flush=True)
n = int(sys.stdin.readline())
counting[0] = True
if sys.argv[3] == "map":
    assert ex.gather(ex.map(t.inc, range(n))) == list(range(1, n + 1))
else:
    for i in range(n):
        assert ex.submit(t.inc, i).result() == i + 1
counting[0] = False
with open(sys.argv[2], "w") as f:
    for code, count in ops.most_common():
        f.write(f"{count}\t{calls[code]}\t{code.co_filename}\t{code.co_name}\n")
print("DONE", flush=True)
sys.stdin.readline()
ex.close()
'''


def layer(filename: str) -> str:
    """``dist_center/server.py`` for a module of the project, ``generated codec`` for the
    codec's generated functions, the file's name for anything else."""
    if filename == "<string>":
        return "generated codec"
    parts = filename.replace(os.sep, "/").split("/")
    for i, part in enumerate(parts):
        if part.startswith("dist_") and i + 1 < len(parts):
            return "/".join(parts[i:i + 2])
    return parts[-1]


def run(n: int, out: Path, mode: str = "latency") -> list[Path]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0",
               DIST_BYTECODES_OUT=str(out / "counts"), DIST_BYTECODES_START=str(int(START)),
               DIST_BYTECODES_STOP=str(int(STOP)))
    (out / "site").mkdir()
    (out / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(out / "site"), str(HERE), env.get("PYTHONPATH")]))
    client_env = dict(env, PYTHONPATH=os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    procs: list[subprocess.Popen] = []
    try:
        address = bare_cluster(BIN, env, procs)
        # A map's count is the client's alone: traced servers run some tenfold slower, and
        # their answers would reach the client in other batches than they do untraced.
        servers = list(procs) if mode == "latency" else []
        client_counts = out / "counts.client"
        client = subprocess.Popen([sys.executable, "-c", CLIENT, address, str(client_counts),
                                   mode],
                                  env=client_env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(client)
        assert client.stdin is not None and client.stdout is not None
        if client.stdout.readline().strip() != "READY":
            raise RuntimeError("the client did not start")
        for proc in servers:
            os.kill(proc.pid, START)
        time.sleep(0.5)  # (the handlers run between two bytecodes of each server)
        client.stdin.write(f"{n}\n")
        client.stdin.flush()
        if client.stdout.readline().strip() != "DONE":
            raise RuntimeError("the client failed")
        for proc in servers:
            os.kill(proc.pid, STOP)
        deadline = time.monotonic() + 30
        names = [out / f"counts.{proc.pid}" for proc in servers]
        while not all(name.exists() for name in names) and time.monotonic() < deadline:
            time.sleep(0.1)
        client.stdin.write("\n")
        client.stdin.flush()
        client.wait(60)
        return [*names, client_counts]
    finally:
        stop_all(procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--mode", choices=["latency", "map"], default="latency",
                        help="N round trips, or one map of N tasks gathered")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dist-bytecodes-") as tmp:
        files = run(args.n, Path(tmp), args.mode)
        unit = "round trip" if args.mode == "latency" else "task"
        roles = ("center", "w0", "w1", "client") if args.mode == "latency" else ("client",)
        for role, path in zip(roles, files):
            rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()]
            ops = sum(int(r[0]) for r in rows) / args.n
            calls = sum(int(r[1]) for r in rows) / args.n
            print(f"{role}: {ops:,.0f} bytecodes, {calls:,.0f} Python calls a {unit}")
            layers: collections.Counter = collections.Counter()
            for count, _, filename, _ in rows:
                layers[layer(filename)] += int(count)
            for name, count in layers.most_common(12):
                print(f"    {count / args.n:8,.0f}  {name}")
            print("    by function (bytecodes, calls):")
            for count, called, filename, function in rows[:args.top]:
                print(f"    {int(count) / args.n:8,.1f} {int(called) / args.n:6.2f}  "
                      f"{function} ({layer(filename)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
