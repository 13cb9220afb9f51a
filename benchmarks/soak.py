"""Soak: mixed traffic from clients that come and go, against one center and two workers.

A long-lived cluster sees clients for days: each connects, submits, maps, gathers, scatters,
computes dask collections, uses coordination primitives under new names, publishes datasets,
runs functions on the workers, registers plugins, reads the task stream, writes a
performance report, cancels work in flight, and then closes -- or crashes (``os._exit``) in
the middle of it all. This starts a real ``dcenter`` (with its ``/metrics``) and two
``dworker``s with their nannies, keeps ``--clients`` client processes running for
``--minutes`` (each process ``--sessions`` ``Executor`` sessions in turn, then a new
process; every third process ends its last session with ``os._exit`` mid-flight), and every
``--sample-every`` seconds records:

- the center's, each nanny's and each worker's RSS, open descriptors and threads;
- the center's tables (``dist_center_entries`` and ``dist_tasks`` of ``/metrics``);
- each worker's tables: the length of every container reachable from its ``Worker`` by
  attributes of the project's classes (a census, read by ``Executor.run``), of the
  project's module-level tables and caches, its threads and allocated blocks.

The JSON written to ``--output`` (default ``benchmarks/results/soak-<time>.json``) holds every
sample. The report names each figure that rose between the first sample after
``--settle-minutes`` and the last (tables by any entry, RSS by more than ``--max-growth``
MB); a table that rose in every one of the last samples is reported as growing. Exits
non-zero when something grew or a session failed.

    python benchmarks/soak.py --minutes 12
    python benchmarks/soak.py --minutes 2 --sample-every 20 --clients 2
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time

import psutil

import servers
from servers import command, start, start_center, stop

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
VOUCHER_NAME = "dist-vouch"  # a nanny's other child (dist_worker.vouching.PROCESS_NAME)

# One client process: ``SESSIONS`` sessions with new names, each a turn of the mix; the last
# one of a crashing process ends with ``os._exit`` while work is in flight.
CLIENT = r'''
import os, sys, tempfile, time
import dask, dask.array as da, dask.bag as db
from dask import delayed
from dist_client import (Event, Executor, Lock, Pub, Queue, Semaphore, Sub, Variable,
                         performance_report, wait)
address, process, sessions, crash = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"

def inc(x):
    return x + 1

def slow(x):
    time.sleep(5)
    return x

class Plugin:
    def setup(self, worker):
        self.worker = worker

def coordination(e, name):
    q = Queue("q-" + name, executor=e)
    q.put(1); assert q.get(timeout=10) == 1
    v = Variable("v-" + name, executor=e)
    v.set(2); assert v.get(timeout=10) == 2; v.delete()
    ev = Event("ev-" + name, executor=e)
    ev.set(); assert ev.wait(10); ev.clear()
    with Lock("l-" + name, executor=e):
        pass
    with Semaphore(max_leases=2, name="s-" + name, executor=e):
        pass
    sub = Sub("t-" + name, executor=e)
    Pub("t-" + name, executor=e).put("hi")
    assert sub.get(timeout=10) == "hi"

def futures(e, name):
    assert e.gather(e.map(inc, range(50))) == list(range(1, 51))
    assert e.submit(sum, e.scatter([1, 2, 3])).result() == 6
    assert e.submit(inc, 1, key="soak-" + name).result() == 2
    data = e.scatter(list(range(10)))
    assert e.gather(e.map(inc, data)) == list(range(1, 11))

def collections(e, name):
    x = da.ones((200, 200), chunks=(50, 50))
    assert e.compute((x + x.T).sum()).result() == 80000
    assert e.compute(db.from_sequence(range(100), npartitions=5).map(inc).sum()).result() == 5050
    assert delayed(sum)([delayed(inc)(i) for i in range(20)]).compute(scheduler=e.get) == 210

def datasets(e, name):
    f = e.submit(inc, 41, pure=False)
    e.publish_dataset(f, name="d-" + name)
    assert e.get_dataset("d-" + name).result() == 42
    e.unpublish_dataset("d-" + name)

def introspection(e, name):
    assert len(e.run(os.getpid)) == 2
    e.register_plugin(Plugin(), name="p-" + name)
    e.unregister_worker_plugin("p-" + name)
    e.register_plugin(Plugin(), name="soak-plugin")  # the same name every time: replaced
    e.log_event("soak", {"name": name})
    e.get_events("soak")
    e.get_task_stream()
    e.get_worker_logs(n=10)
    with tempfile.TemporaryDirectory() as where:
        with performance_report(filename=os.path.join(where, "report.html")):
            e.gather(e.map(inc, range(20), pure=False))

def cancelling(e, name):
    running = e.map(slow, range(4), pure=False)
    time.sleep(0.3)
    e.cancel(running)

MIX = [futures, coordination, collections, datasets, introspection, cancelling]

for number in range(sessions):
    name = f"{process}-{number}"
    e = Executor(address)
    for step in MIX:
        step(e, name)
    if crash and number == sessions - 1:
        pending = e.map(slow, range(6), pure=False)
        q = Queue("crash-" + name, executor=e)
        Lock("crash-" + name, executor=e).acquire(timeout=10)
        time.sleep(0.5)
        print("crashing", flush=True)
        os._exit(0)
    e.close()
print("done", flush=True)
'''


def worker_census(worker=None) -> dict[str, int]:
    """Run on each worker: the length of every container reachable from its ``Worker`` by
    attributes of the project's objects, of every module-level container and cache of the
    project's modules, its threads and the interpreter's allocated blocks."""
    import collections
    import sys as system
    import threading as threads

    from dist_worker.server import Worker

    found: dict[str, int] = {}
    seen: set[int] = set()

    def attributes(obj):
        names = dict(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    names[slot] = getattr(obj, slot)
        return names.items()

    def walk(obj, path: str, depth: int) -> None:
        if id(obj) in seen or depth > 5:
            return
        seen.add(id(obj))
        for name, value in attributes(obj):
            where = f"{path}.{name}"
            if isinstance(value, (dict, set, list, collections.deque)):
                found[where] = len(value)
                if isinstance(value, dict) and len(value) <= 64:
                    for key, item in list(value.items()):
                        if type(item).__module__.startswith("dist_"):
                            walk(item, f"{where}[{key!r}]"[:120], depth + 1)
            elif type(value).__module__.startswith("dist_") and not isinstance(value, type):
                walk(value, where, depth + 1)

    # The worker is found up this task's thread (its pool hands results to the worker's
    # ``on_done``), not through ``gc.get_objects()``: that hands out tuples other threads are
    # still building, which their next resize then refuses (SystemError in a user's task).
    frame = system._getframe() if worker is None else None
    if worker is not None:
        walk(worker, "worker", 0)
    while frame is not None:
        runner = frame.f_locals.get("self")
        worker = getattr(getattr(runner, "on_done", None), "__self__", None)
        if isinstance(worker, Worker):
            walk(worker, "worker", 0)
            break
        frame = frame.f_back
    for module_name, module in list(system.modules.items()):
        if not module_name.startswith("dist_") or module is None:
            continue
        for name, value in list(vars(module).items()):
            where = f"{module_name}.{name}"
            if (isinstance(value, (dict, set, list, collections.deque))
                    and not name.startswith("__")):
                found[where] = len(value)
            elif hasattr(value, "cache_info"):
                found[where + "()"] = value.cache_info().currsize
            elif name.endswith("_bytes") and type(value) is int:  # what a cache holds
                found[where] = value
    found["(threads)"] = threads.active_count()
    found["(allocated blocks)"] = system.getallocatedblocks()
    return found


def center_tables(dashboard: str) -> dict[str, float]:
    found, lines = servers.center_tables(dashboard)
    return {"(metrics lines)": float(lines), **found}


def process_figures(pid: int) -> dict[str, float]:
    proc = psutil.Process(pid)
    with proc.oneshot():
        times = proc.cpu_times()
        return {"rss_mb": round(proc.memory_info().rss / 2**20, 2), "fds": proc.num_fds(),
                "threads": proc.num_threads(), "cpu_s": round(times.user + times.system, 2)}


class Clients:
    """Keeps ``count`` client processes running until stopped; counts what they did."""

    def __init__(self, center: str, count: int, sessions: int) -> None:
        self.center, self.count, self.sessions = center, count, sessions
        self.started = self.finished = self.crashed = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.keep_running, args=(slot,), daemon=True)
                        for slot in range(count)]

    def keep_running(self, slot: int) -> None:
        while not self.stopping.is_set():
            with self.lock:
                number = self.started
                self.started += 1
            crash = number % 3 == 2
            proc = subprocess.Popen(
                [sys.executable, "-c", CLIENT, self.center, str(number), str(self.sessions),
                 "1" if crash else "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            try:
                out, err = proc.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            with self.lock:
                if "crashing" in out:
                    self.crashed += 1
                elif "done" in out and proc.returncode == 0:
                    self.finished += 1
                else:
                    self.failures.append(f"client {number} (exit {proc.returncode}): "
                                         f"{err.strip()[-800:]}")

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(660)


def grown(samples: list[dict], settle_minutes: float, max_growth: float) -> dict[str, list]:
    """Each figure that grew while the clients came and went: every sample of the second half
    after settling above every sample of the first (a table that rises and falls with the
    traffic, or fills to its bound while settling, is not reported), RSS by more than
    ``max_growth`` MB."""
    after = [s for s in samples if s["minute"] >= settle_minutes]
    if len(after) < 4:
        return {}
    half = len(after) // 2

    def series(kind: str, part: str, name: str) -> list:
        return [s[kind].get(part, {}).get(name) for s in after]

    rising: dict[str, list] = {}
    for part, figures in after[-1]["tables"].items():
        for name in figures:
            values = series("tables", part, name)
            if None in values or name.startswith("(allocated"):
                continue
            if min(values[half:]) > max(values[:half]):
                rising[f"{part} {name}"] = values
    for part in after[-1]["processes"]:
        for name in ("rss_mb", "fds", "threads"):
            values = series("processes", part, name)
            if None in values:
                continue
            limit = max_growth if name == "rss_mb" else 0
            if min(values[half:]) - max(values[:half]) > limit:
                rising[f"{part} {name}"] = values
    return rising


def left_behind(idle: dict, departed: dict) -> dict[str, list]:
    """The center's tables and tasks above their idle figures once every client left (an
    event log stays, by design: one primitive per topic logged to)."""
    before, after = idle["tables"]["center"], departed["tables"]["center"]
    return {name: [before.get(name, 0), value] for name, value in after.items()
            if name.startswith(("dist_center_entries", "dist_tasks"))
            and value > before.get(name, 0) and name != "dist_center_entries:primitives"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--clients", type=int, default=3, help="client processes at once")
    parser.add_argument("--sessions", type=int, default=3, help="sessions per client process")
    parser.add_argument("--settle-minutes", type=float, default=2.0)
    parser.add_argument("--max-growth", type=float, default=5.0, help="MB of RSS")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from dist_client import Executor

    random.seed(0)
    center_proc, center, dashboard = start_center(dashboard=True)
    nannies: list[subprocess.Popen] = []
    observer = None
    clients = None
    samples: list[dict] = []
    try:
        for name in ("a", "b"):
            nannies.append(start(command("dworker") + [center, "--nthreads", "2",
                                                       "--name", name], "Start worker at ")[0])
        observer = Executor(center)
        observer.wait_for_workers(2)

        def pids() -> dict[str, int]:
            found = {"center": center_proc.pid}
            for name, nanny in zip("ab", nannies):
                found[f"nanny {name}"] = nanny.pid
                for child in psutil.Process(nanny.pid).children():
                    if child.name() != VOUCHER_NAME:  # (not the one vouching for the worker)
                        found[f"worker {name}"] = child.pid
            return found

        def sample(minute: float) -> dict:
            # (the center read first: the census is a task of the observer's until it let go)
            tables = {"center": center_tables(dashboard)}
            workers = observer.run(worker_census)
            for number, address in enumerate(sorted(workers)):
                tables[f"worker {number}"] = workers[address]
            return {"minute": round(minute, 2), "clients_started": clients.started if clients
                    else 0, "clients_crashed": clients.crashed if clients else 0,
                    "processes": {role: process_figures(pid) for role, pid in pids().items()},
                    "tables": tables}

        began = time.monotonic()
        observer.run(worker_census)  # (what the observer itself keeps on the center is idle)
        samples.append(sample(0.0))
        print(f"minute 0: {json.dumps(samples[-1]['processes'])}", flush=True)
        clients = Clients(center, args.clients, args.sessions)
        clients.start()
        end = began + args.minutes * 60
        next_sample = began + args.sample_every
        while time.monotonic() < end:
            time.sleep(max(0.0, min(next_sample, end) - time.monotonic()))
            if time.monotonic() >= next_sample:
                next_sample += args.sample_every
                samples.append(sample((time.monotonic() - began) / 60))
                processes = samples[-1]["processes"]
                print(f"minute {samples[-1]['minute']:.1f}: clients {clients.started} started, "
                      f"{clients.crashed} crashed, {len(clients.failures)} failed; " + "; ".join(
                          f"{role} {p['rss_mb']:.1f} MB {p['fds']} fds {p['threads']} thr"
                          for role, p in processes.items()), flush=True)
        clients.stop()
        # Once the last clients are gone, the tables should be back where they idle.
        deadline = time.monotonic() + 60
        while center_tables(dashboard).get("dist_clients", 0) > 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        # ... and the tasks they left running (a cancelled or crashed client's) ended.
        while time.monotonic() < deadline and any(
                census.get("worker.state.tasks", 0) > 1 or census.get("worker.store.weights", 0)
                for census in observer.run(worker_census).values()):
            time.sleep(1)
        time.sleep(1)  # (the observer lets go of its last census)
        samples.append(sample((time.monotonic() - began) / 60))
        rising = grown(samples[:-1], args.settle_minutes, args.max_growth)
        left = left_behind(samples[0], samples[-1])
        result = {"args": vars(args), "clients_started": clients.started,
                  "clients_finished": clients.finished, "clients_crashed": clients.crashed,
                  "failures": clients.failures, "rising": rising, "left": left,
                  "samples": samples}
        output = args.output or os.path.join(
            RESULTS, time.strftime("soak-%Y%m%dT%H%M%S.json", time.gmtime()))
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as file:
            json.dump(result, file, indent=1)
        print(f"{clients.started} client processes ({clients.finished} finished, "
              f"{clients.crashed} crashed, {len(clients.failures)} failed); samples in {output}")
        for failure in clients.failures[:5]:
            print("FAILED:", failure)
        for name, values in sorted(rising.items()):
            print(f"grew: {name}: {values}")
        for name, (before, after) in sorted(left.items()):
            print(f"left after the clients: {name}: {before} -> {after}")
        return 1 if rising or left or clients.failures else 0
    finally:
        if clients is not None:
            clients.stopping.set()
        if observer is not None:
            observer.close()
        for nanny in nannies:
            stop(nanny)
        stop(center_proc)


if __name__ == "__main__":
    sys.exit(main())
