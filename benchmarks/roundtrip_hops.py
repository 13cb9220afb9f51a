"""Where one round trip's time goes, hop by hop: client -> center -> worker -> center -> client.

Starts ``dcenter`` and two ``dworker --no-nanny`` and a client that runs N sequential
``submit(inc, i).result()`` after a warm-up. Every process gets a ``sitecustomize`` (on its
``PYTHONPATH``, in a temporary directory) that wraps the comm layer: it notes the time when
bytes arrive on a connection, when a batch is written to one, and (in the client) when the
waiting thread wakes. The clock is ``perf_counter``, the system's monotonic clock, the same in
every process, so the notes of the four processes line up. Each round trip is then cut into
its eight intervals: the time on the wire plus the wake-up of the receiver (from a write to
the next arrival in the next process) and the time each process spends between an arrival and
its answer, and the client's own part up to the next submit written.

    python benchmarks/roundtrip_hops.py [--n 2000] [--json PATH]

Prints the median and quartiles of each hop (µs). What this measures includes the notes
themselves (a few µs per round trip) and, on a busy machine, the time a process waited for a
core: compare the interquartile range with the median.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from procs import bare_cluster, stop_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

SITECUSTOMIZE = r'''
import atexit, os, sys, threading, time

_notes = []
_now = time.perf_counter


def _wrap_comm(comm_module):
    Comm = comm_module.Comm
    # (write_now: where the caller's thread writes submits itself; older comms have none)
    received, flush = Comm.bytes_received, Comm._flush
    write_now = getattr(Comm, "write_now", None)

    def bytes_received(self, nbytes):
        _notes.append((_now(), "recv", self.peer_role or "server"))
        return received(self, nbytes)

    def _flush(self):
        thread_writes = getattr(self, "thread_writes", None)  # older comms kept a ``_rest``
        wanted = self.connection.wants_to_send or (
            thread_writes.has_rest if thread_writes is not None
            else bool(getattr(self, "_rest", None)))
        flush(self)
        if wanted:
            _notes.append((_now(), "write", self.peer_role or "server"))

    def write_now_(self, *messages):
        written = write_now(self, *messages)
        if written:
            _notes.append((_now(), "write", self.peer_role or "server"))
        return written

    Comm.bytes_received, Comm._flush = bytes_received, _flush
    if write_now is not None:
        Comm.write_now = write_now_


def _wrap_future(future_module):
    # ``Future.result`` waits through ``one_settled`` (older clients: ``settled``), looked up
    # in the future module's namespace.
    for name in ("one_settled", "settled"):
        waiter = getattr(future_module, name, None)
        if waiter is None:
            continue

        def woken(state, timeout=None, _waiter=waiter):
            done = _waiter(state, timeout)
            _notes.append((_now(), "woken", "user"))
            return done

        setattr(future_module, name, woken)


def _install():
    # After the program imported the modules (it does so first thing): no import hook needed.
    for _ in range(2000):
        comm = sys.modules.get("dist_protocol.comm")
        if comm is not None and hasattr(comm, "Comm"):
            _wrap_comm(comm)
            break
        time.sleep(0.005)
    for _ in range(400):
        future = sys.modules.get("dist_client.future")
        if future is not None and (hasattr(future, "one_settled") or hasattr(future, "settled")):
            _wrap_future(future)
            break
        time.sleep(0.005)


@atexit.register
def _dump():
    with open(os.path.join(os.environ["DIST_HOPS_DIR"], f"{os.getpid()}.notes"), "w") as f:
        f.writelines(f"{t:.7f} {event} {peer}\n" for t, event, peer in _notes)


threading.Thread(target=_install, daemon=True).start()
'''

CLIENT = r'''
import sys
import bench_tasks as t
from dist_client import Executor
ex = Executor(sys.argv[1])
for i in range(200):
    ex.submit(t.inc, -i - 1).result()
for i in range(int(sys.argv[2])):
    assert ex.submit(t.inc, i).result() == i + 1
ex.close()
'''

HOPS = [
    ("client -> center (wire and wake-up)", "center", "recv", "client"),
    ("center: submit in, compute-task out", "center", "write", "worker"),
    ("center -> worker (wire and wake-up)", "worker", "recv", "server"),
    ("worker: compute-task in, task-finished out", "worker", "write", "server"),
    ("worker -> center (wire and wake-up)", "center", "recv", "worker"),
    ("center: task-finished in, key-in-memory out", "center", "write", "client"),
    ("center -> client I/O thread (wire and wake-up)", "client", "recv", "server"),
    ("client: I/O thread to the waiting thread woken", "client", "woken", "user"),
    # The caller's own part: the value read, the next task built and written (and, when the
    # I/O thread writes submits, the hand-over to it).
    ("client: woken to the next submit written", "client", "write", "server"),
]


def read_notes(path: Path) -> dict[tuple[str, str], list[float]]:
    notes: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for line in path.read_text().splitlines():
        t, event, peer = line.split()
        notes[(event, peer)].append(float(t))
    for times in notes.values():
        times.sort()
    return notes


def round_trips(notes: dict[str, dict], n: int) -> list[list[float]]:
    """Each of the last ``n`` client writes followed through the processes to the next."""
    out = []
    for start in notes["client"][("write", "server")][-n:-1]:
        times = [start]
        for _, process, event, peer in HOPS:
            series = notes[process][(event, peer)]
            i = bisect.bisect_right(series, times[-1])
            if i == len(series):
                break
            times.append(series[i])
        if len(times) == len(HOPS) + 1:
            out.append([(b - a) * 1e6 for a, b in zip(times, times[1:])])
    return out


def run(n: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="dist-hops-") as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env = dict(os.environ, PYTHONUNBUFFERED="1", DIST_HOPS_DIR=tmp,
                   PYTHONMALLOC=os.environ.get("PYTHONMALLOC", "malloc"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(HERE),
                                                          env.get("PYTHONPATH")]))
        procs: list[subprocess.Popen] = []
        try:
            address = bare_cluster(BIN, env, procs)
            subprocess.run([sys.executable, "-c", CLIENT, address, str(n)], env=env,
                           check=True, timeout=600)
            client_notes = [p for p in Path(tmp).glob("*.notes")]
            assert len(client_notes) == 1, "the client left no notes"
        finally:
            stop_all(procs)
        by_pid = {path.stem: read_notes(path) for path in Path(tmp).glob("*.notes")}
        worker_notes: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        for proc in procs[1:]:
            for key, times in by_pid.get(str(proc.pid), {}).items():
                worker_notes[key] += times
        for times in worker_notes.values():
            times.sort()
        client_pid = next(pid for pid in by_pid if pid not in {str(p.pid) for p in procs})
        notes = {"client": by_pid[client_pid], "center": by_pid[str(procs[0].pid)],
                 "worker": worker_notes}
    trips = round_trips(notes, n)
    result = {}
    for i, (name, *_) in enumerate(HOPS):
        values = [trip[i] for trip in trips]
        q1, median, q3 = statistics.quantiles(values, n=4)
        result[name] = {"median_us": median, "q1_us": q1, "q3_us": q3}
    totals = [sum(trip) for trip in trips]  # from one submit written to the next
    q1, median, q3 = statistics.quantiles(totals, n=4)
    result["round trip"] = {"median_us": median, "q1_us": q1, "q3_us": q3}
    return {"round_trips": len(trips), "load_average": os.getloadavg()[0], "hops": result}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    result = run(args.n)
    print(f"{result['round_trips']} round trips, load average {result['load_average']:.1f}; "
          "µs: median (quartiles)")
    for name, figures in result["hops"].items():
        print(f"  {name:48s} {figures['median_us']:7.0f}  ({figures['q1_us']:.0f}-"
              f"{figures['q3_us']:.0f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
