"""Departed clients: what a client that closed, or was killed mid-operation, leaves behind.

A long-lived center and its workers see clients come and go for days; each client may leave
with futures held, a Lock or Semaphore lease taken, a ``Queue.get`` or ``Variable.get``
waiting, topics subscribed, an actor made, a gather of a large value, a replicate, a
rebalance or a large graph's submission under way. This starts a real ``dcenter`` (with its
``/metrics``) and two ``dworker --no-nanny``, then runs ``--sessions`` client processes one
after the other, each doing one ``--kind`` of thing (all kinds in turn by default) and then
either closing its ``Executor`` or being killed with SIGKILL once it says it is under way
(``--ending``: ``close``, ``kill`` or ``both``, alternating). Each session picks names new to
the cluster (``--new-names``, the default) or the same names every time.

After each session (once the center counts no client but the observer) it reads the
center's ``dist_center_entries`` and ``dist_tasks`` from ``/metrics`` (an event log logged
to is kept, entries and all, as dask keeps its events: one primitive more per name), and every
``--report-every`` sessions it prints those with the servers' RSS, open descriptors and
threads. At the end it checks with the observer client that what the departed held is free
again: the Lock and the Semaphore can be taken, a value put in the Queue is got by the
observer (not by a departed getter), and the workers hold no key. It exits non-zero when a
table that should be back at its idle size is not, or when the last check fails.

    python benchmarks/departed_clients.py --sessions 40                  # every kind, both ends
    python benchmarks/departed_clients.py --kind lock --ending kill --sessions 200
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psutil

from servers import center_tables, command, start, start_center, stop

KINDS = ("futures", "lock", "semaphore", "queue_get", "variable_get", "topics", "actor",
         "gather", "replicate", "rebalance", "scatter", "wait", "graph", "log")

# What a session does, run in its own process: ``NAME`` is the session's suffix for names.
SESSION = r'''
import os, sys, threading, time
from dist_client import Executor, Lock, Semaphore, Queue, Variable, Pub, Sub, wait, as_completed
kind, name, address = sys.argv[1], sys.argv[2], sys.argv[3]

class Counter:
    def __init__(self):
        self.n = 0
    def add(self, k=1):
        self.n += k
        return self.n
    def slow_add(self, k=1):
        time.sleep(2)
        return b"v" * (50 * 2**20)

def big(n):
    return b"x" * n

def slow(x):
    time.sleep(30)
    return x

def ready():
    print("ready", flush=True)

e = Executor(address)
if kind == "futures":
    held = e.map(big, [2**20 + i for i in range(8)], pure=False)
    wait(held)
    scattered = e.scatter([b"y" * 2**20])
    ready()
elif kind == "lock":
    lock = Lock("lock-" + name, executor=e)
    assert lock.acquire(timeout=10)
    ready()
elif kind == "semaphore":
    sem = Semaphore(max_leases=2, name="sem-" + name, executor=e)
    assert sem.acquire(timeout=10) and sem.acquire(timeout=10)
    ready()
elif kind == "queue_get":
    q = Queue("queue-" + name, executor=e)
    threading.Thread(target=lambda: q.get(timeout=60), daemon=True).start()
    ready()
elif kind == "variable_get":
    v = Variable("var-" + name, executor=e)
    threading.Thread(target=lambda: v.get(timeout=60), daemon=True).start()
    ready()
elif kind == "topics":
    sub = Sub("topic-" + name, executor=e)
    e.subscribe_topic("log-" + name, lambda event: None)
    Pub("topic-" + name, executor=e).put(1)
    ready()
elif kind == "log":
    e.log_event("log-" + name, {"n": 1})
    ready()
elif kind == "actor":
    counter = e.submit(Counter, actor=True).result()
    counter.add(1).result()
    threading.Thread(target=lambda: counter.slow_add(1).result(), daemon=True).start()
    time.sleep(0.2)
    ready()
elif kind == "gather":
    value = e.submit(big, 200 * 2**20, pure=False)
    wait(value)
    threading.Thread(target=lambda: e.gather(value), daemon=True).start()
    time.sleep(0.3)
    ready()
elif kind == "replicate":
    held = e.map(big, [2**22 + i for i in range(20)], pure=False)
    wait(held)
    threading.Thread(target=lambda: e.replicate(held, n=2), daemon=True).start()
    ready()
elif kind == "rebalance":
    held = e.map(big, [2**22 + i for i in range(20)], pure=False, workers=[sys.argv[4]])
    wait(held)
    threading.Thread(target=lambda: e.rebalance(held), daemon=True).start()
    ready()
elif kind == "scatter":
    threading.Thread(target=lambda: e.scatter([b"z" * 50 * 2**20 for _ in range(4)]),
                     daemon=True).start()
    time.sleep(0.2)
    ready()
elif kind == "wait":
    running = e.map(slow, range(4), pure=False)
    threading.Thread(target=lambda: wait(running), daemon=True).start()
    threading.Thread(target=lambda: list(as_completed(running)), daemon=True).start()
    ready()
elif kind == "graph":
    graph = {("x-" + name, i): (sum, [i, 1]) for i in range(20_000)}
    graph["total-" + name] = (sum, list(graph))
    threading.Thread(target=lambda: e.get(graph, "total-" + name), daemon=True).start()
    time.sleep(0.5)
    ready()
if sys.stdin.readline().strip() == "close":
    e.close()
'''


def metrics(dashboard: str) -> dict[str, float]:
    return center_tables(dashboard, timeout=10)[0]


def worker_census() -> dict[str, int]:
    """Run on each worker: its live connections, actors and asyncio tasks (found through the
    collector, as a debugger would: the worker has no query for them)."""
    import asyncio
    import gc

    from dist_protocol.comm import Comm
    from dist_worker.actors import ActorHost
    found = {"comms": 0, "actors": 0, "tasks": 0}
    for obj in gc.get_objects():
        if isinstance(obj, Comm):
            found["comms"] += 1
        elif isinstance(obj, ActorHost):
            found["actors"] += len(obj.hosted)
        elif isinstance(obj, asyncio.Task):
            found["tasks"] += not obj.done()
    return found


def census(pid: int) -> tuple[float, int, int]:
    proc = psutil.Process(pid)
    return proc.memory_info().rss / 2**20, proc.num_fds(), proc.num_threads()


def run_session(kind: str, name: str, center: str, worker: str, ending: str) -> str:
    """Runs one session to its end; returns what went wrong, or ""."""
    proc = subprocess.Popen([sys.executable, "-c", SESSION, kind, name, center, worker],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            return f"{kind}: did not get under way: {proc.stderr.read()[-500:]}"
        if ending == "kill":
            proc.send_signal(signal.SIGKILL)
        else:
            proc.stdin.write("close\n")
            proc.stdin.flush()
        proc.wait(60)
        return ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_departed(dashboard: str, timeout: float = 30.0) -> dict[str, float]:
    """The center's figures once only the observer is connected."""
    deadline = time.monotonic() + timeout
    while True:
        found = metrics(dashboard)
        if found.get("dist_clients") == 1 or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2 * len(KINDS))
    parser.add_argument("--kind", choices=KINDS + ("all",), default="all")
    parser.add_argument("--ending", choices=("close", "kill", "both"), default="both")
    parser.add_argument("--same-names", action="store_true",
                        help="every session uses the same names (default: new ones each)")
    parser.add_argument("--report-every", type=int, default=10)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds after a session before the center is read")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from dist_client import Executor, Lock, Queue, Semaphore

    center_proc, center, dashboard = start_center(dashboard=True)
    workers = []
    observer = None
    try:
        for name in ("a", "b"):
            workers.append(start(command("dworker") + [center, "--nthreads", "2", "--no-nanny",
                                                       "--name", name], "Start worker at "))
        observer = Executor(center)
        observer.wait_for_workers(2)
        pids = {"center": center_proc.pid, **{f"worker {i}": proc.pid
                                             for i, (proc, _) in enumerate(workers)}}
        observer.run(worker_census)  # (the observer's own entries are idle ones)
        idle = wait_departed(dashboard)
        idle_census = {role: census(pid) for role, pid in pids.items()}
        kinds = KINDS if args.kind == "all" else (args.kind,)
        endings = ("close", "kill") if args.ending == "both" else (args.ending,)
        failures = []
        grown: dict[str, float] = {}
        for number in range(args.sessions):
            kind = kinds[number % len(kinds)]
            ending = endings[(number // len(kinds)) % len(endings)]
            name = "same" if args.same_names else f"s{number}"
            error = run_session(kind, name, center, workers[0][1], ending)
            if error:
                failures.append(error)
            time.sleep(args.settle)
            after = wait_departed(dashboard)
            # An event log keeps its entries, as dask's does: one per name logged to.
            logs = len({name for n in range(number + 1) if kinds[n % len(kinds)] == "log"
                        for name in ["same" if args.same_names else f"s{n}"]})
            expected = {**idle, "dist_center_entries:primitives":
                        idle.get("dist_center_entries:primitives", 0) + logs}
            left = {k: v for k, v in after.items() if v > expected.get(k, 0)
                    and k.startswith("dist_center_entries")}
            left.update({k: v for k, v in after.items() if k.startswith("dist_tasks:")
                         and v > 0 and k not in ("dist_tasks:released",)})
            if left:
                grown.update(left)
                print(f"session {number} ({kind}, {ending}) left: {left}", flush=True)
            if (number + 1) % args.report_every == 0 or number + 1 == args.sessions:
                line = [f"{number + 1} sessions:"]
                for role, pid in pids.items():
                    rss, fds, threads = census(pid)
                    line.append(f"{role} {rss:.1f} MB {fds} fds {threads} threads")
                print("; ".join(line), flush=True)
                print("    workers:", observer.run(worker_census), flush=True)
        print("idle:", "; ".join(f"{role} {rss:.1f} MB {fds} fds {threads} threads"
                                 for role, (rss, fds, threads) in idle_census.items()))
        def last_name(kind: str) -> str:
            numbers = [n for n in range(args.sessions) if kinds[n % len(kinds)] == kind]
            return "same" if args.same_names or not numbers else f"s{numbers[-1]}"

        name = last_name("lock")
        if not Lock("lock-" + name, executor=observer).acquire(timeout=5):
            failures.append("the departed client's Lock is still held")
        sem = Semaphore(max_leases=2, name="sem-" + last_name("semaphore"), executor=observer)
        if not (sem.acquire(timeout=5) and sem.acquire(timeout=5)):
            failures.append("the departed client's Semaphore leases are still held")
        queue = Queue("queue-" + last_name("queue_get"), executor=observer)
        queue.put("mine")
        if queue.get(timeout=5) != "mine":
            failures.append("a departed client's Queue.get took the value")
        if grown:
            failures.append(f"tables grew: {grown}")
        for failure in failures:
            print("FAILED:", failure)
        return 1 if failures else 0
    finally:
        if observer is not None:
            observer.close()
        for proc, _ in workers:
            stop(proc)
        stop(center_proc)


if __name__ == "__main__":
    sys.exit(main())
