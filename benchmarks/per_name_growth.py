"""Per-name growth: what a long-lived cluster keeps for each new name it is shown once.

A client open for hours may use a new name each time: a new function (a lambda or closure
pickled by value, ``pure=False``), keys with a unique prefix (``key=f"job{i}-..."``), a new
name for each Queue, Variable, Event, Lock, Semaphore, topic and dataset it uses once and
lets go of. Nothing per client grows here (one ``Executor`` throughout); what may grow is
what the center, the worker and the client keep per name: per-prefix tables, function
caches, logs, ``/metrics`` series, the dashboard's rows.

This starts a real ``dcenter`` (with its dashboard) and a ``dworker --no-nanny``, then runs
``--rounds`` rounds, each with names new to the cluster: a closure holding ``--closure-kb``
of its own submitted with a key of a new prefix, a map of ``--map`` tasks keyed so, and each
primitive used once and let go of (a Lock and a Semaphore taken and released, a Queue put
and got, a Variable set and deleted, an Event set, waited on and cleared, a Pub/Sub message, a
dataset published and unpublished). Every ``--report-every`` rounds it prints the RSS of the
center, the worker and the client, the center's table sizes (``dist_center_entries``), the
number of lines and bytes of ``/metrics`` and of rows of the dashboard's task table.
It exits non-zero when the RSS of a process rises more than ``--max-growth`` MB between the
first report after ``--settle`` rounds and the last.

    python benchmarks/per_name_growth.py --rounds 3000 --report-every 500
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

import psutil


def metrics_text(dashboard: str) -> str:
    with urllib.request.urlopen(dashboard.rstrip("/") + "/metrics", timeout=10) as reply:
        return reply.read().decode()


def dashboard_rows(dashboard: str) -> int:
    with urllib.request.urlopen(dashboard.rstrip("/") + "/api/tasks", timeout=10) as reply:
        answer = json.loads(reply.read())
    return len(answer["progress"])


def entries(text: str) -> dict[str, int]:
    found = {}
    for line in text.splitlines():
        if line.startswith("dist_center_entries{"):
            label = line.split('"', 2)[1]
            found[label] = int(float(line.rsplit(" ", 1)[1]))
    return found


def one_round(e, i: int, closure_bytes: int, map_size: int) -> None:
    from dist_client import Event, Lock, Pub, Queue, Semaphore, Sub, Variable

    data = b"%d" % i + bytes(closure_bytes)
    future = e.submit(lambda x, data=data: len(data) + x, i, key=f"job{i}-new", pure=False)
    assert future.result() == len(data) + i
    mapped = e.map(abs, range(map_size), key=[f"row{i}_{j}-k" for j in range(map_size)])
    assert e.gather(mapped) == list(range(map_size))
    del future, mapped
    lock = Lock(f"lock-{i}", executor=e)
    assert lock.acquire(timeout=10)
    lock.release()
    semaphore = Semaphore(max_leases=1, name=f"sem-{i}", executor=e)
    assert semaphore.acquire(timeout=10)
    semaphore.release()
    queue = Queue(f"queue-{i}", executor=e)
    queue.put(i)
    assert queue.get(timeout=10) == i
    variable = Variable(f"var-{i}", executor=e)
    variable.set(i)
    assert variable.get(timeout=10) == i
    variable.delete()
    event = Event(f"event-{i}", executor=e)
    event.set()
    assert event.wait(timeout=10)
    event.clear()
    sub = Sub(f"topic-{i}", executor=e)
    Pub(f"topic-{i}", executor=e).put(i)
    assert sub.get(timeout=10) == i
    sub.close()
    e.publish_dataset(**{f"dataset-{i}": i})
    e.unpublish_dataset(f"dataset-{i}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--report-every", type=int, default=250)
    parser.add_argument("--settle", type=int, default=250,
                        help="rounds before the first report the growth is measured from")
    parser.add_argument("--closure-kb", type=int, default=100)
    parser.add_argument("--map", type=int, default=5)
    parser.add_argument("--max-growth", type=float, default=5.0)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from servers import command, rss_mb, start, start_center, stop
    from dist_client import Executor

    center_proc, center, dashboard = start_center(dashboard=True)
    worker_proc = None
    try:
        worker_proc, _ = start(command("dworker") + [center, "--nthreads", "2", "--no-nanny"],
                               "Start worker at ")
        pids = {"center": center_proc.pid, "worker": worker_proc.pid, "client": os.getpid()}
        reports: list[tuple[int, dict[str, float]]] = []
        with Executor(center) as e:
            e.wait_for_workers(1)
            began = time.monotonic()
            for i in range(args.rounds + 1):
                if i % args.report_every == 0:
                    time.sleep(1.5)  # past the dashboard's cache of its answers
                    text = metrics_text(dashboard)
                    rss = {role: rss_mb(pid) for role, pid in pids.items()}
                    reports.append((i, rss))
                    tables = {k: v for k, v in entries(text).items() if v}
                    print(f"round {i:>6} ({time.monotonic() - began:6.0f} s): "
                          + ", ".join(f"{role} {mb:.1f} MB" for role, mb in rss.items())
                          + f"; /metrics {len(text.splitlines())} lines, {len(text)} bytes;"
                          f" dashboard task rows {dashboard_rows(dashboard)};"
                          f" center tables {tables}", flush=True)
                if i < args.rounds:
                    one_round(e, i, args.closure_kb * 1024, args.map)
        settled = next((rss for i, rss in reports if i >= args.settle), reports[0][1])
        last = reports[-1][1]
        growth = {role: last[role] - settled[role] for role in last}
        print("growth after settling: " + ", ".join(f"{role} {mb:+.1f} MB"
                                                    for role, mb in growth.items()))
        return 1 if any(mb > args.max_growth for mb in growth.values()) else 0
    finally:
        if worker_proc is not None:
            stop(worker_proc)
        stop(center_proc)
        for proc in psutil.Process().children(recursive=True):
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
