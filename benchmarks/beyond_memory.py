"""Arrays and results beyond memory: dist beside dask.distributed, as a user would run them.

Starts one center/scheduler and two single-threaded workers with the same ``--memory-limit``
(default 400 MB each) for each system, then runs workloads whose data is several times the
workers' memory, each checked against the answer computed another way:

* ``array-sum``: ``da.random.random((N, N)).sum()`` with N chosen so the chunks total
  ``--factor`` (default 4) times the workers' memory together;
* ``array-transpose``: ``(x + x.T).mean()`` on that array (every chunk meets its mirror);
* ``persist``: the array persisted (about twice the workers' memory together), then ``sum``
  and ``(x + x.T).mean()`` on it, then released;
* ``map-sum``: 24 tasks each returning an 80 MB array, then one task summing their sums;
* ``scatter``: one array of 1.5 times one worker's limit scattered, then summed on the
  cluster (no worker can receive it: a clear refusal, sending nothing, counts as handled);
* ``gather``: 12 results of 50 MB gathered to the client at once (1.5 times the workers'
  memory together);
* ``shuffle``: a dataframe of 1.5 times the workers' memory together (``key, x, y, z``, 40
  partitions; ``--shuffle-gb`` and ``--shuffle-partitions`` set others) persisted, then
  shuffled on ``key`` with tasks, then per partition its rows, the sum of ``x`` and its keys
  (each key must land in one partition only), checked against the same figures computed with
  pandas in this process, then released.

Reported per system and workload: wall time, peak RSS of each worker process (nanny
excluded), bytes written to and read back from spill files (in all and per worker, from the
workers' own counters: dist's ``spill_written``/``spill_read`` metrics, dask's ``disk-write``
and ``disk-read``), restarts and whether the answer is right.

    python benchmarks/beyond_memory.py                    # both systems
    python benchmarks/beyond_memory.py --systems dist --workloads array-sum,map-sum
    python benchmarks/beyond_memory.py --systems dist --workloads shuffle --shuffle-gb 0.6
    python benchmarks/beyond_memory.py --systems dist --workloads shuffle --shuffle-gb 1.6 \
        --shuffle-partitions 50                           # the 1.6 GB task shuffle

Not a timed test: run it by hand (a few minutes on 2 cores); it needs dask[array] and
distributed (``benchmarks/setup.sh`` installs them into ``benchmarks/.venv``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spill import Cluster, PeakSampler, write_report  # noqa: E402

MB = 10**6
SHUFFLE_PARTITIONS = 40
SHUFFLE_KEYS = 10_000


class Refused(str):
    """The workload was refused with a clear error before anything was lost: a right
    answer for a workload that cannot fit."""


def block(i: int, nbytes: int) -> np.ndarray:
    values = np.random.default_rng(i).random(nbytes // 8)
    values[0] = i
    return values


def total_of(values: np.ndarray) -> float:
    return float(values.sum())


def frame_part(i: int, rows: int):
    import pandas as pd
    rng = np.random.default_rng(1000 + i)
    return pd.DataFrame({"key": rng.integers(0, SHUFFLE_KEYS, rows), "x": rng.random(rows),
                         "y": rng.random(rows), "z": rng.random(rows)})


def partition_stats(frame):
    import pandas as pd
    keys = np.unique(frame["key"].to_numpy())
    return pd.DataFrame({"rows": [len(frame)], "xsum": [float(frame["x"].sum())],
                         "keys": [keys.tobytes()]})


def workloads(limit: int, factor: float, shuffle_bytes: float | None = None,
              shuffle_partitions: int = SHUFFLE_PARTITIONS):
    import dask.array as da

    side = int((factor * 2 * limit / 8) ** 0.5) // 1000 * 1000
    chunk = 1000 if side < 8000 else 2000
    persisted_side = int((2 * 2 * limit / 8) ** 0.5) // 1000 * 1000

    def array(n: int):
        return da.random.RandomState(0).random_sample((n, n), chunks=(chunk, chunk))

    def expected_sum(n: int) -> float:
        return float(array(n).sum().compute(scheduler="threads"))

    def array_sum(client, compute):
        got = compute(array(side).sum())
        want = expected_sum(side)
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def array_transpose(client, compute):
        x = array(side)
        got = compute((x + x.T).mean())
        want = 2 * expected_sum(side) / side**2
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def persist(client, compute):
        x = client.persist(array(persisted_side))
        try:
            got_sum = compute(x.sum())
            got_mean = compute((x + x.T).mean())
        finally:
            del x
        want = expected_sum(persisted_side)
        if not np.isclose(got_sum, want, rtol=1e-9):
            return f"sum {got_sum} != {want}"
        if not np.isclose(got_mean, 2 * want / persisted_side**2, rtol=1e-9):
            return f"mean {got_mean} != {2 * want / persisted_side**2}"
        return None

    def map_sum(client, compute):
        blocks = client.map(block, range(24), nbytes=80 * MB)
        sums = client.map(total_of, blocks)
        total = client.submit(sum, sums)
        got = total.result()
        want = sum(total_of(block(i, 80 * MB)) for i in range(24))
        del blocks, sums, total
        return None if np.isclose(got, want, rtol=1e-12) else f"{got} != {want}"

    def scatter(client, compute):
        data = block(7, int(1.5 * limit))
        try:
            [future] = client.scatter([data])
        except ValueError as exc:  # no worker has room: refused before sending, as it should
            return Refused(str(exc))
        got = client.submit(total_of, future).result()
        want = total_of(data)
        del future
        return None if got == want else f"{got} != {want}"

    def gather(client, compute):
        futures = client.map(block, range(100, 112), nbytes=50 * MB)
        values = client.gather(futures)
        wrong = [i for i, v in zip(range(100, 112), values) if v[0] != i]
        del futures, values
        return f"blocks {wrong} wrong" if wrong else None

    def shuffle(client, compute):
        import dask.dataframe as dd
        total = shuffle_bytes or 1.5 * 2 * limit
        rows = int(total / 32 / shuffle_partitions)  # four 8-byte columns
        frame = client.persist(dd.from_map(frame_part, range(shuffle_partitions), rows=rows))
        try:
            shuffled = frame.shuffle("key", shuffle_method="tasks")
            stats = compute(shuffled.map_partitions(
                partition_stats, meta={"rows": "i8", "xsum": "f8", "keys": "O"}))
        finally:
            del frame
        parts = [frame_part(i, rows) for i in range(shuffle_partitions)]
        want_rows = rows * shuffle_partitions
        want_xsum = sum(float(p["x"].sum()) for p in parts)
        want_keys = len(np.unique(np.concatenate([p["key"].to_numpy() for p in parts])))
        del parts
        if int(stats["rows"].sum()) != want_rows:
            return f"{int(stats['rows'].sum())} rows, expected {want_rows}"
        if not np.isclose(stats["xsum"].sum(), want_xsum, rtol=1e-9):
            return "sum of x differs"
        seen = np.concatenate([np.frombuffer(k, dtype=np.int64) for k in stats["keys"]])
        if len(seen) != len(np.unique(seen)):
            return "a key is in more than one partition"
        return None if len(seen) == want_keys else "keys are missing"

    return {"array-sum": array_sum, "array-transpose": array_transpose, "persist": persist,
            "map-sum": map_sum, "scatter": scatter, "gather": gather,
            "shuffle": shuffle}, side, persisted_side


def run_system(system: str, args, log_dir: Path, table: dict | None = None,
               worker_options: tuple[str, ...] = ()) -> dict:
    """Run ``args.workloads`` of ``table`` (default: this file's) on a fresh cluster of
    ``system``; ``worker_options`` go to dist's ``dworker`` only."""
    if table is None:
        limit = int(float(args.memory_limit.upper().removesuffix("MB")) * MB)
        table, side, persisted = workloads(limit, args.factor,
                                           args.shuffle_gb * 1e9 if args.shuffle_gb else None,
                                           args.shuffle_partitions)
        print(f"{system}: array {side}x{side} ({side * side * 8 / MB:.0f} MB), persisted "
              f"{persisted}x{persisted} ({persisted * persisted * 8 / MB:.0f} MB)", flush=True)
    cluster = Cluster(system, args.memory_limit, log_dir, Path(sys.executable).parent,
                      worker_options)
    results: dict = {}
    cluster.start()
    try:
        if system == "dist":
            from dist_client import Executor
            client = Executor(cluster.address)
        else:
            from distributed import Client
            client = Client(cluster.address)
        compute = lambda c: client.compute(c).result()
        for name in args.workloads.split(","):
            sampler = PeakSampler(cluster)
            sampler.start()
            written_before = cluster.spill_per_worker(client, "spill_written", "disk-write")
            read_before = cluster.spill_per_worker(client, "spill_read", "disk-read")
            started = time.perf_counter()
            error = wrong = None
            try:
                wrong = table[name](client, compute)
            except Exception as exc:  # noqa: BLE001 -- reported as the workload's outcome
                error = f"{type(exc).__name__}: {exc}"
            wall = time.perf_counter() - started
            sampler.stopping.set()
            sampler.join()
            refused = isinstance(wrong, Refused)
            written = since(cluster.spill_per_worker(client, "spill_written", "disk-write"),
                            written_before)
            read = since(cluster.spill_per_worker(client, "spill_read", "disk-read"),
                         read_before)
            results[name] = {
                "wall_s": round(wall, 2), "correct": error is None and wrong is None,
                "refused": refused, "problem": error or wrong,
                "peak_rss_mb": [round(p / MB) for p in sampler.peaks],
                "spilled_mb": round(sum(written.values()) / MB),
                "read_back_mb": round(sum(read.values()) / MB),
                "spilled_mb_by_worker": {w: round(b / MB) for w, b in sorted(written.items())},
                "read_back_mb_by_worker": {w: round(b / MB) for w, b in sorted(read.items())},
                "restarts": len(sampler.pids - set(cluster.first_children))}
            print(f"{system:5} {name:16} {json.dumps(results[name])}", flush=True)
            cluster.first_children = cluster.worker_processes()
            time.sleep(2)  # let released results leave before the next workload
        client.close()
    finally:
        cluster.stop()
    return results


def since(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Each worker's bytes since ``before`` (a worker restarted since starts from 0)."""
    return {w: b - before.get(w, 0) if b >= before.get(w, 0) else b for w, b in now.items()}


def outcome(result: dict) -> str:
    if result["correct"]:
        return "yes"
    if result.get("refused"):
        return "refused: " + str(result["problem"])[:60]
    return "NO: " + str(result["problem"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="dist,dask")
    parser.add_argument("--memory-limit", default="400MB", help="per worker, in MB")
    parser.add_argument("--factor", type=float, default=4.0,
                        help="the array's size over the workers' memory together")
    parser.add_argument("--shuffle-gb", type=float, default=None,
                        help="the shuffled dataframe's size (default: 1.5 times the workers' "
                        "memory together)")
    parser.add_argument("--shuffle-partitions", type=int, default=SHUFFLE_PARTITIONS,
                        help="the shuffled dataframe's partitions")
    parser.add_argument("--workloads", default="array-sum,array-transpose,persist,map-sum,"
                        "scatter,gather,shuffle")
    parser.add_argument("--output", default=str(HERE / "results" /
                                                 "beyond-memory-latest.json"))
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="dist-bench-beyond-memory-logs-"))
    report = {"memory_limit": args.memory_limit, "factor": args.factor, "workers": 2,
              "threads_per_worker": 1, "cpus": os.cpu_count(), "systems": {}}
    for system in args.systems.split(","):
        report["systems"][system] = run_system(system, args, log_dir)
    write_report(report, Path(args.output), log_dir, outcome)


if __name__ == "__main__":
    main()
