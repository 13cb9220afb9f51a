"""Actors on dist, dask.distributed and Ray: a counter on one worker, called from one client.

Each system gets the cluster shape of run.py (one center/scheduler, two single-threaded worker
processes, on 127.0.0.1) and, in a client process of its own, makes one ``Counter`` actor
(``actor_classes.py``) and times, after a warm-up, wall clock in the client:

* ``round trip``: ROUND_TRIPS calls of ``increment`` one after another, each waited for
  (dist: ``actor.increment().result()``; dask: the same; Ray: ``ray.get(a.increment.remote())``);
* ``async calls/s``: CALLS calls sent without waiting, then all their results waited for
  (dist and dask: the futures' ``result()``; Ray: one ``ray.get`` of every ref);
* ``task latency``: the system's own ``submit(inc, i).result()`` round trip, one after another
  (``pure=False``; Ray: ``ray.get(inc.remote(i))``), the figure the actor round trip is held to.

    python benchmarks/actors.py                          # all three; JSON to results/
    python benchmarks/actors.py --systems dist,dask --round-trips 500 --calls 10000

One invocation starts and stops every cluster itself.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from benchvenv import reexec_in_venv

HERE = Path(__file__).resolve().parent

reexec_in_venv(__file__)

import run  # noqa: E402  (its environment and versions for the children)
from clusters import CLUSTERS, missing_reason  # noqa: E402
from procs import Spawner, tail  # noqa: E402
SYSTEMS = ["dist", "dask", "ray"]
WARM_UP = 50


# -- the client side (a process of its own per system) ---------------------------------------
def timed_calls(call, wait, n: int) -> tuple[float, float]:
    """(seconds per call waited for one by one, calls/s sent together then waited for)."""
    for _ in range(WARM_UP):
        wait(call())
    start = time.perf_counter()
    for _ in range(n[0]):
        wait(call())
    round_trip = (time.perf_counter() - start) / n[0]
    start = time.perf_counter()
    pending = [call() for _ in range(n[1])]
    for future in pending:
        wait(future)
    rate = n[1] / (time.perf_counter() - start)
    return round_trip, rate


def drive(system: str, address: str, round_trips: int, calls: int) -> dict:
    from actor_classes import Counter, inc

    sizes = (round_trips, calls)
    if system == "dist":
        from dist_client import Executor
        with Executor(address) as e:
            e.wait_for_workers(2)
            counter = e.submit(Counter, actor=True).result()
            trip, rate = timed_calls(counter.increment, lambda f: f.result(), sizes)
            tasks = iter(range(10**9))
            task, _ = timed_calls(lambda: e.submit(inc, next(tasks), pure=False),
                                  lambda f: f.result(), (round_trips, 1))
            final = counter.increment().result() - 1
    elif system == "dask":
        from distributed import Client
        with Client(address) as c:
            c.wait_for_workers(2)
            counter = c.submit(Counter, actor=True).result()
            trip, rate = timed_calls(counter.increment, lambda f: f.result(), sizes)
            tasks = iter(range(10**9))
            task, _ = timed_calls(lambda: c.submit(inc, next(tasks), pure=False),
                                  lambda f: f.result(), (round_trips, 1))
            final = counter.increment().result() - 1
    else:
        import ray
        ray.init(address=address, log_to_driver=False)
        try:
            counter = ray.remote(Counter).remote()
            remote_inc = ray.remote(inc)
            trip, _ = timed_calls(counter.increment.remote, ray.get, (round_trips, 1))
            for _ in range(WARM_UP):
                ray.get(counter.increment.remote())
            start = time.perf_counter()
            ray.get([counter.increment.remote() for _ in range(calls)])
            rate = calls / (time.perf_counter() - start)
            tasks = iter(range(10**9))
            task, _ = timed_calls(lambda: remote_inc.remote(next(tasks)), ray.get,
                                  (round_trips, 1))
            final = ray.get(counter.increment.remote()) - 1
        finally:
            ray.shutdown()
    # Every call reached the counter once: the warm-up, the round trips, the calls sent
    # together (Ray's round trips are timed with one extra call, and its calls warmed up apart).
    expected = WARM_UP + round_trips + calls
    if system == "ray":
        expected += WARM_UP + 1
    if final != expected:
        raise AssertionError(f"the counter reads {final}, not {expected}: calls were lost")
    return {"round_trip_ms": trip * 1e3, "async_calls_per_s": rate, "task_latency_ms": task * 1e3,
            "round_trips": round_trips, "calls": calls}


# -- the harness --------------------------------------------------------------------------------
def measure(system: str, round_trips: int, calls: int, log_dir: Path, timeout: float) -> dict:
    bin_dir = Path(sys.executable).parent
    reason = missing_reason(system, sys.executable, bin_dir)
    if reason:
        return {"status": "missing", "reason": reason}
    spawner = Spawner(log_dir / system, run.child_env())
    (log_dir / system).mkdir(parents=True, exist_ok=True)
    cluster = CLUSTERS[system](spawner, bin_dir)
    try:
        cluster.start()
        argv = [sys.executable, __file__, "--drive", system, "--address", cluster.address,
                "--round-trips", str(round_trips), "--calls", str(calls)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env=spawner.base_env)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "reason": f"over {timeout} s"}
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            return {"status": "failed", "reason": (done.stderr.strip().splitlines() or ["?"])[-1]}
        return {"status": "ok", **json.loads(lines[-1][len("RESULT "):])}
    except Exception as exc:  # noqa: BLE001 -- one system's failure must not stop the others
        print(f"{system}: {exc}", file=sys.stderr)
        for log in sorted((log_dir / system).glob("*.log"))[:3]:
            print(tail(log), file=sys.stderr)
        return {"status": "failed", "reason": f"{exc}"}
    finally:
        spawner.kill_all()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--drive", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        print("RESULT " + json.dumps(drive(args.drive, args.address, args.round_trips,
                                           args.calls)), flush=True)
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = HERE / "results" / "logs" / f"actors-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = {"benchmark": "actors", "time": stamp, "versions": run.versions(),
               "cluster": "1 center + 2 workers x 1 thread, 127.0.0.1",
               "systems": {system: measure(system, args.round_trips, args.calls, log_dir,
                                           args.timeout) for system in systems}}
    output = args.output or HERE / "results" / f"actors-{stamp}.json"
    output.write_text(json.dumps(results, indent=2))
    for system, result in results["systems"].items():
        if result["status"] == "ok":
            print(f"{system:5} actor round trip {result['round_trip_ms']:7.3f} ms   "
                  f"async {result['async_calls_per_s']:8.0f} calls/s   "
                  f"task round trip {result['task_latency_ms']:7.3f} ms")
        else:
            print(f"{system:5} {result['status']}: {result.get('reason', '')}")
    print(f"JSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
