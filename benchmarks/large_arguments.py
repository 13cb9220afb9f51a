"""How long a task argument of a gigabyte holds the center's and the worker's event loops.

    python benchmarks/large_arguments.py --mb 1024 --how submit,get,scatter --kind bytes

Starts a ``dcenter`` and a ``dworker`` (one thread, no nanny), each with a loop-lag probe: a
thread that asks the loop to call it back every 50 ms and, while it waits, samples the loop
thread's stack every 20 ms. Every wait past ``--report`` ms is printed by the process as a
``loop-stall`` line with the stack seen most often meanwhile. Then a client, in this process,
gives the worker one value of ``--mb`` megabytes (``--kind``: ``bytes`` from os.urandom,
``array``: float64 noise) each way of ``--how``: ``submit`` (a task whose argument is the
value), ``get`` (a dask graph holding the value as a literal, through ``Executor.get``),
``scatter``; prints each way's wall time, the CPU seconds the center and the worker spent on
it and the worker's peak resident memory meanwhile (``/proc``, sampled every 5 ms), then each
process's longest stall and the stalls. ``--json FILE``: every figure, each way of each run
(``--runs``).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from large_servers import make, start, wait_line

PROBE_EVERY = 0.05
SAMPLE_EVERY = 0.02


def install_probe(report: float) -> None:
    """In a server's process, before its loop is made: a lag probe on every uvloop loop."""
    import uvloop

    made = uvloop.new_event_loop

    def new_event_loop():
        loop = made()
        thread = threading.get_ident()
        threading.Thread(target=probe, args=(loop, thread, report), daemon=True).start()
        if os.environ.get("LARGE_ARGUMENTS_TIMELINE"):
            threading.Thread(target=timeline, daemon=True).start()
        return loop

    uvloop.new_event_loop = new_event_loop


def where(frame) -> str:
    frames = traceback.extract_stack(frame)[-6:]
    return " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"
                      for f in reversed(frames))


def probe(loop, thread: int, report: float) -> None:
    while not loop.is_closed():
        answered = threading.Event()
        began = time.perf_counter()
        try:
            loop.call_soon_threadsafe(answered.set)
        except RuntimeError:  # closed meanwhile
            return
        seen: collections.Counter[str] = collections.Counter()
        others: collections.Counter[str] = collections.Counter()
        while not answered.wait(SAMPLE_EVERY):
            for ident, frame in sys._current_frames().items():
                if ident == thread:
                    seen[where(frame)] += 1
                elif ident != threading.get_ident():
                    others[where(frame)] += 1
        lag = time.perf_counter() - began
        if lag > report:
            top = seen.most_common(1)[0][0] if seen else "?"
            print(f"loop-stall {lag * 1000:.0f} ms at {top} (ended {time.strftime('%H:%M:%S')})",
                  file=sys.stderr, flush=True)
            for at, count in others.most_common(3):
                print(f"    beside it ({count}): {at}", file=sys.stderr, flush=True)
        # The interpreter held by another thread (a copy in one call) holds this thread's
        # wake-up too: a stall that begins while it sleeps shows as an overslept sleep, and
        # the loop then answers at once.
        slept = time.perf_counter()
        time.sleep(PROBE_EVERY)
        held = time.perf_counter() - slept - PROBE_EVERY
        if held > report:
            print(f"loop-stall {held * 1000:.0f} ms at (the probe's own sleep: the interpreter "
                  f"held) (ended {time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)


IDLE = ("wait", "_wait_for_tstate_lock", "select", "get", "_worker", "sleep")


def timeline() -> None:
    """Every second, what each thread was busy with most often (``--timeline``)."""
    me = threading.get_ident()
    while True:
        busy: collections.Counter[str] = collections.Counter()
        for _ in range(50):
            time.sleep(SAMPLE_EVERY)
            for ident, frame in sys._current_frames().items():
                if ident != me and frame.f_code.co_name not in IDLE:
                    busy[where(frame)] += 1
        for at, count in busy.most_common(2):
            print(f"{time.strftime('%H:%M:%S')} busy ({count}/50): {at}", file=sys.stderr,
                  flush=True)


def serve(argv: list[str], report: float) -> None:
    install_probe(report)
    sys.argv = argv
    if argv[0] == "dcenter":
        from dist_center.launch import main
    else:
        from dist_worker.cli import main
    main()


def start_probed(argv: list[str], lines: list[str], report: float) -> subprocess.Popen:
    """``argv`` (``dcenter ...`` or ``dworker ...``) run by this file, with its lag probe."""
    return start([sys.executable, __file__, "--serve", str(report), *argv], lines)


def size_of(value) -> int:
    return value.nbytes if hasattr(value, "nbytes") else len(value)


def cpu_seconds(pid: int) -> float:
    """User and system CPU of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakResident:
    """The highest resident memory of process ``pid`` while it is sampled (its own high-water
    mark cannot be used: a worker resets it as each task starts)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(0.005):
            with open(f"/proc/{self.pid}/statm") as statm:
                self.peak = max(self.peak, int(statm.read().split()[1]) * page)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def stalls(lines: list[str]) -> list[tuple[float, str]]:
    return [(float(found.group(1)), found.group(2)) for line in lines
            if (found := re.search(r"loop-stall (\d+) ms at (.*)", line))]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[3:], float(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--kind", default="bytes", choices=("bytes", "array"))
    parser.add_argument("--how", default="submit,get,scatter")
    parser.add_argument("--report", type=float, default=200.0, help="ms")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", help="file for every way's figures in every run")
    args = parser.parse_args()
    figures: list[dict] = []
    from dist_client import Executor

    report = args.report / 1000
    center_lines: list[str] = []
    worker_lines: list[str] = []
    servers = []
    try:
        servers.append(start_probed(["dcenter", "--host", "127.0.0.1", "--port", "0",
                              "--no-dashboard"], center_lines, report))
        address = wait_line(center_lines, r"Start center at (\S+)").group(1)
        servers.append(start_probed(["dworker", address, "--host", "127.0.0.1", "--nthreads", "1",
                              "--no-nanny"], worker_lines, report))
        wait_line(worker_lines, "Registered with center")
        value = make(args.kind, args.mb * 2**20)
        with Executor(address) as executor:
            for run, how in [(run, how) for run in range(args.runs)
                             for how in args.how.split(",")]:
                cpu_before = [cpu_seconds(server.pid) for server in servers]
                worker_peak = PeakResident(servers[1].pid)
                stalls_before = len(stalls(worker_lines))
                began = time.perf_counter()
                if how == "submit":
                    got = executor.submit(size_of, value, pure=False).result()
                elif how == "get":
                    got = executor.get({"value": value, "size": (size_of, "value")}, "size")
                elif how == "tensordot":  # dask's test_tensordot_more_than_26_dims
                    import dask
                    import dask.array as da
                    import numpy
                    x = numpy.broadcast_to(1, [2] * 27)
                    dx = da.from_array(x, chunks=-1)
                    with dask.config.set(scheduler=executor.get):
                        got = int(da.tensordot(dx, dx, 27).compute())
                    assert got == 2**27, got
                    got = size_of(value)
                elif how == "scatter":
                    future = executor.scatter(value)
                    got = executor.submit(size_of, future).result()
                    del future
                else:
                    raise ValueError(how)
                took = time.perf_counter() - began
                assert got == size_of(value), got
                time.sleep(4 * PROBE_EVERY)  # (a stall as the value went is reported)
                center_cpu, worker_cpu = (cpu_seconds(server.pid) - before
                                          for server, before in zip(servers, cpu_before))
                figures.append({
                    "run": run, "how": how, "seconds": round(took, 3),
                    "center_cpu_s": round(center_cpu, 2), "worker_cpu_s": round(worker_cpu, 2),
                    "worker_peak_mb": round(worker_peak.stop() / 2**20),
                    "worker_stalls_ms": [ms for ms, _ in stalls(worker_lines)[stalls_before:]],
                    "load": round(os.getloadavg()[0], 1)})
                print(f"{time.strftime('%H:%M:%S')} {how}: {took:.2f} s,", json.dumps(figures[-1]),
                      flush=True)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
    for name, lines in (("center", center_lines), ("worker", worker_lines)):
        found = stalls(lines)
        longest = max((ms for ms, _ in found), default=0.0)
        print(f"{name}: {len(found)} stalls past {args.report:.0f} ms, longest {longest:.0f} ms")
        for line in lines:
            if "loop-stall" in line or "beside it" in line or " busy (" in line:
                print("   ", line.rstrip())
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"mb": args.mb, "kind": args.kind, "figures": figures,
                       "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())},
                      out, indent=1)
    removed = [line for line in center_lines if "remov" in line.lower()]
    print("center removed the worker:" if removed else "center never removed the worker",
          "".join(removed[:3]))


if __name__ == "__main__":
    main()
