"""Real dask-collection workloads on dist beside dask's local threaded scheduler, the floor.

Each workload is a dask collection; dist runs it through ``Executor.get`` on one center and two
single-threaded workers (the cluster shape of ``run.py``); the floor is dask's threaded
scheduler in this process with as many threads as the cluster has. Every result is checked
against ``scheduler="sync"``. The data is made on the workers from seeds (``collection_tasks``),
so no system ships it from the client.

    python benchmarks/dask_workloads.py [--repeat 3] [--only array,groupby]

| workload | the collection |
|---|---|
| array | ``(x + x.T).sum(axis=0)``, x 6000 x 6000 in 500 x 500 chunks |
| groupby | 1.3M rows in 30 partitions, ``groupby("key").agg({"x": "sum", "y": "mean"})`` |
| shuffle | 0.86M rows in 20 partitions, ``shuffle("key", shuffle_method="tasks")`` |
| wordcount | 400,000 lines in 40 partitions (dask.bag), ``str.split().flatten().frequencies()`` |

Results: ``benchmarks/results/dask-workloads.json`` (medians and every sample).
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
from clusters import DistCluster  # noqa: E402
from procs import Spawner  # noqa: E402


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


def timed(compute, repeat: int) -> tuple[list[float], object]:
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = compute()
        samples.append(time.perf_counter() - start)
    return samples, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--output", type=Path,
                        default=HERE / "results" / "dask-workloads.json")
    args = parser.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name]
    import dask

    from dist_client import Executor

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    log_dir = HERE / "results" / "logs" / "dask-workloads"
    log_dir.mkdir(parents=True, exist_ok=True)
    spawner = Spawner(log_dir, env)
    doc: dict = {"load_average_before": os.getloadavg(), "workloads": {}}
    try:
        cluster = DistCluster(spawner, Path(sys.executable).parent)
        cluster.start()
        with Executor(cluster.address) as ex:
            for name in chosen:
                collection = WORKLOADS[name]()
                expected = collection.compute(scheduler="sync")
                # One uncounted run each: imports and the workers' first use of pandas/numpy.
                dask.compute(collection, scheduler="threads", num_workers=2)
                collection.compute(scheduler=ex.get)
                floor, floor_result = timed(lambda: collection.compute(
                    scheduler="threads", num_workers=2), args.repeat)
                dist, dist_result = timed(lambda: collection.compute(scheduler=ex.get),
                                          args.repeat)
                entry = {"dist_s": statistics.median(dist), "dist_runs": dist,
                         "threads_s": statistics.median(floor), "threads_runs": floor,
                         "dist_correct": same(name, dist_result, expected),
                         "threads_correct": same(name, floor_result, expected)}
                entry["ratio"] = entry["dist_s"] / entry["threads_s"]
                doc["workloads"][name] = entry
                print(f"{name:10} dist {entry['dist_s']:6.3f} s  local threads "
                      f"{entry['threads_s']:6.3f} s  ratio {entry['ratio']:.2f}  correct: "
                      f"{entry['dist_correct']}/{entry['threads_correct']}", flush=True)
    finally:
        spawner.kill_all()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
