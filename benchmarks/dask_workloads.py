"""Real dask-collection workloads on dist, dask.distributed and Ray, beside dask's local
threaded scheduler (the floor with no network), all in one invocation.

Each workload is a dask collection. Every system runs it on the cluster shape of ``run.py`` (one
center or scheduler, two single-threaded workers): dist through ``Executor.get``, dask.distributed
through ``Client.get``, Ray through ``ray.util.dask.ray_dask_get``; the floor is dask's threaded
scheduler in this process with as many threads as the clusters have. Every result is checked
against ``scheduler="sync"``. The data is made on the workers from seeds (``collection_tasks``),
so no system ships it from the client.

    python benchmarks/dask_workloads.py [--repeat 3] [--only array,groupby] [--systems dist,dask]

| workload | the collection |
|---|---|
| array | ``(x + x.T).sum(axis=0)``, x 6000 x 6000 in 500 x 500 chunks |
| groupby | 1.3M rows in 30 partitions, ``groupby("key").agg({"x": "sum", "y": "mean"})`` |
| shuffle | 0.86M rows in 20 partitions, ``shuffle("key", shuffle_method="tasks")`` |
| wordcount | 400,000 lines in 40 partitions (dask.bag), ``str.split().flatten().frequencies()`` |

A system that is not installed, or fails a workload, is reported with the reason and does not
stop the others. Results: ``benchmarks/results/dask-workloads.json`` (medians, every sample;
for dist, the results moved between workers in each run, by key prefix; for dist, dask and the
floor, the CPU seconds of each run by process: ``local`` is this process, the client or the
threaded scheduler, and ``center``/``workers`` the cluster's process trees).

For dist, each run's timeline from the center's task stream (``timeline`` in the JSON, and a
line per workload): when the first task started after ``compute`` was called, how long the
result took to come back after the last task stopped (the tail), and per worker its tasks,
the seconds they ran, and the seconds its thread went without a task between its first and
its last (the wait for the next one: the hand-off through the worker's loop and the center,
and inputs on their way), with the median such gap; and what started each task on its
worker (``starts``: the worker's own task before it, the center's answer, an input from a
peer), from the workers' stories.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import collection_tasks as ct  # noqa: E402
from benchvenv import reexec_in_venv  # noqa: E402
from clusters import CLUSTERS, missing_reason  # noqa: E402
from procs import Spawner, tree_cpu  # noqa: E402

reexec_in_venv(__file__)


def array_workload():
    import dask.array as da

    x = da.random.RandomState(0).random((6000, 6000), chunks=500)
    return (x + x.T).sum(axis=0)


def table(rows: int, partitions: int):
    import dask.dataframe as dd

    per = rows // partitions
    return dd.from_map(ct.table_partition, range(partitions), rows=per)


def groupby_workload():
    return table(1_300_000, 30).groupby("key").agg({"x": "sum", "y": "mean"})


def shuffle_workload():
    shuffled = table(860_000, 20).shuffle("key", shuffle_method="tasks")
    # Per partition: its rows and the keys it holds, which must not be in any other one.
    return shuffled.map_partitions(lambda p: p.assign(n=1).groupby("key").n.sum().to_frame())


def wordcount_workload():
    import dask.bag as db

    lines = db.from_sequence(range(40), npartitions=40).map(ct.text_lines, 10_000).flatten()
    return lines.str.split().flatten().frequencies(sort=True)


WORKLOADS = {"array": array_workload, "groupby": groupby_workload,
             "shuffle": shuffle_workload, "wordcount": wordcount_workload}


def same(name: str, got, expected) -> bool:
    import numpy as np

    if name == "array":
        return bool(np.allclose(got, expected))
    if name == "wordcount":
        return dict(got) == dict(expected)
    if name == "shuffle":
        # Every key in exactly one partition, every row counted once.
        keys = got.index
        return (not keys.duplicated().any() and int(got.n.sum()) == int(expected.n.sum())
                and set(keys) == set(expected.index))
    return bool(np.allclose(got.sort_index().to_numpy(), expected.sort_index().to_numpy()))


def cpu_snapshot(cluster=None) -> dict[str, float]:
    """CPU seconds so far of this process and, for a cluster, of its center and workers."""
    import psutil

    own = psutil.Process().cpu_times()
    snapshot = {"local": own.user + own.system}
    if cluster is not None:
        snapshot["center"] = tree_cpu(cluster.center_pid)
        snapshot["workers"] = sum(tree_cpu(pid) for pid in cluster.worker_pids)
    return snapshot


def timed(collection, repeat: int, after=None, cluster=None,
          **scheduler) -> tuple[list[float], list[dict[str, float]], object]:
    """Seconds per ``collection.compute(**scheduler)``, ``repeat`` times, the CPU seconds of
    each run by process (``cpu_snapshot``), and the last result; ``after(started)`` is called
    after each run, outside the timing."""
    samples, cpu, result = [], [], None
    for _ in range(repeat):
        before = cpu_snapshot(cluster)
        started = time.time()
        start = time.perf_counter()
        result = collection.compute(**scheduler)
        samples.append(time.perf_counter() - start)
        spent = cpu_snapshot(cluster)
        cpu.append({name: round(spent[name] - before[name], 3) for name in spent})
        if after is not None:
            after(started)
    return samples, cpu, result


def median_cpu(cpu: list[dict[str, float]]) -> dict[str, float]:
    return {name: round(statistics.median(run[name] for run in cpu), 3) for name in cpu[0]}


class MoveCounter:
    """dist's scheduler function that, after each run, appends to ``moves`` the results one
    worker fetched from another during it, by key prefix: from the workers' stories of the
    graph's keys (entries from ``flight`` to ``memory``); to ``starts`` the tasks its workers
    started, by what started each (the kind of the stimulus of its entry from ``ready`` to
    ``executing``: ``task-succeeded``, the worker's own task before it; ``compute-task``, the
    center's answer; ``data-fetched``, an input from a peer); and to ``timelines`` the run's
    ``timeline``."""

    def __init__(self, executor, moves: list[dict[str, int]]):
        self.executor, self.moves = executor, moves
        self.keys: list = []
        self.starts: list[dict[str, int]] = []
        self.timelines: list[dict] = []
        self.returned = 0.0  # when the last ``get`` returned

    def get(self, dsk, keys, **kwargs):
        graph = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else dsk
        self.keys = list(graph)
        result = self.executor.get(dsk, keys, **kwargs)
        self.returned = time.time()
        return result

    def __call__(self, started: float) -> None:
        self.timelines.append(timeline(self.executor.get_task_stream(start=started), started,
                                       self.returned))
        moved: dict[str, int] = {}
        starts: dict[str, int] = {}
        for entry in self.executor.story(*self.keys):
            if not entry["worker"] or entry["time"] < started:
                continue
            if entry["start"] == "flight" and entry["finish"] == "memory":
                key = entry["key"]
                name = key[0] if isinstance(key, tuple) else key
                prefix = name.rsplit("-", 1)[0]
                moved[prefix] = moved.get(prefix, 0) + 1
            elif entry["start"] == "ready" and entry["finish"] == "executing":
                kind = str(entry["stimulus_id"]).rsplit("-", 1)[0]
                starts[kind] = starts.get(kind, 0) + 1
        self.moves.append(moved)
        self.starts.append(starts)



def timeline(stream: list[dict], started: float, returned: float) -> dict:
    """A run's timeline from the task stream of its tasks (runs that started after
    ``started``; ``returned``: when ``get`` returned): seconds from ``started`` to the first
    task's start, from the last task's stop to ``returned``, and per worker (by address) its
    tasks, the seconds they ran and the seconds between its first task's start and its last
    one's stop that no task ran (``idle``; one thread per worker), with the median gap."""
    runs: dict[str, list[tuple[float, float]]] = {}
    for record in stream:
        for span in record.get("startstops", ()):
            if span.get("action") == "compute" and span["start"] >= started:
                runs.setdefault(record["worker"], []).append((span["start"], span["stop"]))
    if not runs:
        return {}
    workers = {}
    for worker, spans in sorted(runs.items()):
        spans.sort()
        busy = sum(stop - start for start, stop in spans)
        gaps = [max(0.0, later[0] - earlier[1]) for earlier, later in zip(spans, spans[1:])]
        workers[worker] = {"tasks": len(spans), "busy": round(busy, 4),
                           "idle": round(spans[-1][1] - spans[0][0] - busy, 4),
                           "median_gap_ms": round(statistics.median(gaps) * 1e3, 3)
                           if gaps else 0.0}
    return {"first_start": round(min(s[0][0] for s in runs.values()) - started, 4),
            "tail": round(returned - max(s[-1][1] for s in runs.values()), 4),
            "workers": workers}


def timeline_summary(timelines: list[dict]) -> str:
    """Medians over the runs: first start, tail, and per worker (in the order of their
    busy seconds) tasks, busy and idle seconds and the median gap."""
    timelines = [t for t in timelines if t]
    if not timelines:
        return ""
    med = statistics.median
    ranked = [sorted(t["workers"].values(), key=lambda w: -w["busy"]) for t in timelines]
    parts = [f"first task {med([t['first_start'] for t in timelines]) * 1e3:.0f} ms",
             f"tail {med([t['tail'] for t in timelines]) * 1e3:.0f} ms"]
    for i in range(min(len(r) for r in ranked)):
        parts.append(f"w{i}: {med([r[i]['tasks'] for r in ranked]):.0f} tasks, busy "
                     f"{med([r[i]['busy'] for r in ranked]):.3f} s, idle "
                     f"{med([r[i]['idle'] for r in ranked]):.3f} s, gap "
                     f"{med([r[i]['median_gap_ms'] for r in ranked]):.2f} ms")
    return "(timeline: " + "; ".join(parts) + ")"


class Connected:
    """A system's dask scheduler function while connected to its cluster."""

    def __init__(self, system: str, address: str):
        self.system = system
        if system == "dist":
            from dist_client import Executor
            self.handle = Executor(address)
            self.get = self.handle.get
        elif system == "dask":
            from distributed import Client
            self.handle = Client(address)
            self.get = self.handle.get
        else:
            import ray
            from ray.util.dask import ray_dask_get
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            self.get = ray_dask_get

    def close(self) -> None:
        if self.system == "ray":
            import ray
            ray.shutdown()
        else:
            self.handle.close()


def run_system(system: str, spawner: Spawner, collections: dict, expected: dict,
               repeat: int) -> dict:
    """Start ``system``'s cluster, time every workload on it, stop it."""
    results: dict = {}
    cluster = CLUSTERS[system](spawner, Path(sys.executable).parent)
    try:
        cluster.start()
        connected = Connected(system, cluster.address)
        try:
            for name, collection in collections.items():
                try:
                    collection.compute(scheduler=connected.get)  # warm-up, not counted
                    moves: list[dict[str, int]] = []
                    after, get = None, connected.get
                    if system == "dist":
                        after = MoveCounter(connected.handle, moves)
                        get = after.get
                    # (Ray's processes are not all in the trees started here)
                    measured = cluster if system in ("dist", "dask") else None
                    runs, cpu, result = timed(collection, repeat, after, measured,
                                              scheduler=get)
                    results[name] = {"s": statistics.median(runs), "runs": runs,
                                     "correct": same(name, result, expected[name])}
                    if measured is not None:
                        results[name].update(cpu_s=median_cpu(cpu), cpu_runs=cpu)
                    if moves:
                        results[name]["moves"] = moves
                    if isinstance(after, MoveCounter):
                        results[name]["timeline"] = after.timelines
                        results[name]["starts"] = after.starts
                except Exception as exc:  # noqa: BLE001 -- reported as the workload's outcome
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        finally:
            connected.close()
    except Exception as exc:  # noqa: BLE001 -- a cluster that will not start: the rest run
        results = {name: {"error": f"cluster: {type(exc).__name__}: {exc}"[:500]}
                   for name in collections}
    finally:
        spawner.kill_all()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--systems", default=",".join(CLUSTERS))
    parser.add_argument("--output", type=Path,
                        default=HERE / "results" / "dask-workloads.json")
    args = parser.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name]
    systems = [name for name in args.systems.split(",") if name]
    import dask

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    log_dir = HERE / "results" / "logs" / "dask-workloads"
    log_dir.mkdir(parents=True, exist_ok=True)
    doc: dict = {"load_average_before": os.getloadavg(), "repeat": args.repeat,
                 "workloads": {name: {} for name in chosen}}
    collections = {name: WORKLOADS[name]() for name in chosen}
    expected = {name: c.compute(scheduler="sync") for name, c in collections.items()}
    for name, collection in collections.items():
        dask.compute(collection, scheduler="threads", num_workers=2)  # warm-up
        runs, cpu, result = timed(collection, args.repeat, scheduler="threads", num_workers=2)
        doc["workloads"][name]["threads"] = {"s": statistics.median(runs), "runs": runs,
                                             "correct": same(name, result, expected[name]),
                                             "cpu_s": median_cpu(cpu), "cpu_runs": cpu}
    for system in systems:
        reason = missing_reason(system, sys.executable, Path(sys.executable).parent)
        if reason:
            print(f"{system}: not run ({reason})", flush=True)
            for name in chosen:
                doc["workloads"][name][system] = {"error": f"not installed: {reason}"}
            continue
        spawner = Spawner(log_dir, env)
        for name, entry in run_system(system, spawner, collections, expected,
                                      args.repeat).items():
            doc["workloads"][name][system] = entry
    doc["load_average_after"] = os.getloadavg()
    for name, entries in doc["workloads"].items():
        cells = []
        for system, entry in entries.items():
            if "error" in entry:
                cells.append(f"{system} failed")
            else:
                mark = "" if entry["correct"] else " WRONG"
                cells.append(f"{system} {entry['s']:6.3f} s{mark}")
                if "cpu_s" in entry:
                    cells.append("(CPU " + " ".join(f"{who} {seconds:.3f}" for who, seconds
                                                    in entry["cpu_s"].items()) + ")")
                if "moves" in entry:
                    cells.append(f"(moves per run {entry['moves']})")
                if entry.get("timeline"):
                    cells.append(timeline_summary(entry["timeline"]))
                if entry.get("starts"):
                    kinds = sorted({kind for run in entry["starts"] for kind in run})
                    cells.append("(tasks started on, per run: " + ", ".join(
                        f"{kind} {statistics.median(run.get(kind, 0) for run in entry['starts']):g}"
                        for kind in kinds) + ")")
        print(f"{name:10} " + "  ".join(cells), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
