"""Tasks that submit tasks: recursive Fibonacci on dist, dask.distributed and Ray.

Each system gets the cluster shape of run.py (one center/scheduler, two single-threaded
worker processes, on 127.0.0.1) and, in a client process of its own, runs ``fib(n)`` where
every call with ``n >= 2`` submits its two sub-calls and waits on them, giving its thread
back meanwhile: dist's ``worker_executor()``, dask's ``worker_client()``, Ray's ``ray.get``
inside a task. Timed after a warm-up (``fib(5)``), wall clock in the client:

* ``unique``: fib(N_UNIQUE), every call its own task (dist and dask with ``pure=False``;
  Ray's calls always are): calls(n) tasks, half of them waiting at some point;
* ``keyed``: fib(N_KEYED) with equal calls sharing a key (dist and dask only): n + 1 tasks.

    python benchmarks/nested.py                       # all three; JSON to results/
    python benchmarks/nested.py --systems dist,dask --unique 12 --keyed 20

One invocation starts and stops every cluster itself. On 2 shared cores keep ``--unique``
modest: Ray keeps a worker process per blocked task.
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


# -- the client side (a process of its own per system) ---------------------------------------
def drive(system: str, address: str, mode: str, n: int) -> dict:
    import nested_tasks as tasks

    unique = mode == "unique"
    if system == "dist":
        from dist_client import Executor
        with Executor(address) as e:
            e.wait_for_workers(2)
            assert e.submit(tasks.dist_fib, 5, unique, pure=False).result() == 5
            start = time.perf_counter()
            value = e.submit(tasks.dist_fib, n, unique, pure=False).result()
            elapsed = time.perf_counter() - start
    elif system == "dask":
        from distributed import Client
        with Client(address) as c:
            c.wait_for_workers(2)
            assert c.submit(tasks.dask_fib, 5, unique, pure=False).result() == 5
            start = time.perf_counter()
            value = c.submit(tasks.dask_fib, n, unique, pure=False).result()
            elapsed = time.perf_counter() - start
    else:
        import ray
        ray.init(address=address, log_to_driver=False)
        try:
            fib = tasks.ray_fib()
            assert ray.get(fib.remote(5)) == 5
            start = time.perf_counter()
            value = ray.get(fib.remote(n))
            elapsed = time.perf_counter() - start
        finally:
            ray.shutdown()
    if value != tasks.fib(n):
        raise AssertionError(f"fib({n}) gave {value}, not {tasks.fib(n)}")
    ntasks = tasks.calls(n) if unique else n + 1
    return {"n": n, "value": value, "seconds": elapsed, "tasks": ntasks,
            "tasks_per_s": ntasks / elapsed}


# -- the harness --------------------------------------------------------------------------------
def measure(system: str, modes: dict[str, int], log_dir: Path, timeout: float) -> dict:
    bin_dir = Path(sys.executable).parent
    reason = missing_reason(system, sys.executable, bin_dir)
    if reason:
        return {mode: {"status": "missing", "reason": reason} for mode in modes}
    spawner = Spawner(log_dir / system, run.child_env())
    (log_dir / system).mkdir(parents=True, exist_ok=True)
    cluster = CLUSTERS[system](spawner, bin_dir)
    results: dict[str, dict] = {}
    try:
        cluster.start()
        spawner.remember_tree()
        for mode, n in modes.items():
            if system == "ray" and mode == "keyed":
                results[mode] = {"status": "n/a", "reason": "Ray has no keys: every call runs"}
                continue
            argv = [sys.executable, __file__, "--drive", system, "--address", cluster.address,
                    "--mode", mode, "--n", str(n)]
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                      env=spawner.base_env)
            except subprocess.TimeoutExpired:
                results[mode] = {"status": "timeout", "reason": f"over {timeout} s"}
                continue
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                results[mode] = {"status": "failed",
                                 "reason": (done.stderr.strip().splitlines() or ["?"])[-1]}
            else:
                results[mode] = {"status": "ok", **json.loads(lines[-1][len("RESULT "):])}
            spawner.remember_tree()
    except Exception as exc:  # noqa: BLE001 -- one system's failure must not stop the others
        for mode in modes:
            results.setdefault(mode, {"status": "failed", "reason": f"{exc}"})
        print(f"{system}: {exc}", file=sys.stderr)
        for log in sorted((log_dir / system).glob("*.log"))[:3]:
            print(tail(log), file=sys.stderr)
    finally:
        spawner.kill_all()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--unique", type=int, default=12,
                        help="n of the run where every call is a task (default 12: 465 tasks)")
    parser.add_argument("--keyed", type=int, default=20,
                        help="n of the run where equal calls share a key (default 20)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--drive", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["unique", "keyed"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        print("RESULT " + json.dumps(drive(args.drive, args.address, args.mode, args.n)),
              flush=True)
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = HERE / "results" / "logs" / f"nested-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    modes = {"unique": args.unique, "keyed": args.keyed}
    results = {"benchmark": "nested", "time": stamp, "versions": run.versions(),
               "cluster": "1 center + 2 workers x 1 thread, 127.0.0.1",
               "systems": {system: measure(system, modes, log_dir, args.timeout)
                           for system in systems}}
    output = args.output or HERE / "results" / f"nested-{stamp}.json"
    output.write_text(json.dumps(results, indent=2))
    for system, by_mode in results["systems"].items():
        for mode, result in by_mode.items():
            if result["status"] == "ok":
                print(f"{system:5} {mode:7} fib({result['n']}) {result['tasks']:6} tasks "
                      f"{result['seconds']:8.2f} s  {result['tasks_per_s']:8.0f} tasks/s")
            else:
                print(f"{system:5} {mode:7} {result['status']}: {result.get('reason', '')}")
    print(f"JSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
