"""Data beyond memory: dist beside dask.distributed on a dataset ~3x the workers' memory.

One invocation generates a parquet dataset (by default 2.4 GB in memory: 120 partitions of
625,000 rows of ``key, x, y, z``), then for each system starts one center/scheduler and two
single-threaded workers with the same ``--memory-limit`` (default 400 MB each: the data is 3x
their total) and runs, through dask.dataframe:

* ``groupby``: ``read_parquet(...).groupby("key").agg(x=sum, y=mean, n=count)``;
* ``shuffle``: a task-based shuffle on ``key``, then per partition its row count, the sum of
  ``x`` and its keys -- every key must land in exactly one partition.

dist runs them through ``Executor.get`` (``dask.compute(..., scheduler=executor.get)``), dask
through its ``Client``. Each result is checked against sums the generator kept while writing
the data (exact for counts and keys; to 1e-9 relative for float sums). Reported per system and
workload: wall time, peak RSS of each worker process (nanny excluded), bytes written to spill
files (dist: its workers' ``spill_written`` metric; dask: ``disk-write`` bytes), and worker
restarts (a worker process that is not the one that started).

    python benchmarks/spill.py                         # both systems, 2.4 GB
    python benchmarks/spill.py --gb 0.6 --memory-limit 200MB --systems dist

Not a timed test: run it by hand (about 10-20 minutes on 2 cores); it needs dask[dataframe],
distributed and pyarrow (``benchmarks/setup.sh`` installs them into ``benchmarks/.venv``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
NKEYS = 10_000
ROW_BYTES = 32  # four 8-byte columns


# -- the data ------------------------------------------------------------------------------
def generate(directory: Path, gb: float, partitions: int) -> dict:
    """Write the dataset; return what the workloads must find in it."""
    import pandas as pd

    rows = int(gb * 1e9 / ROW_BYTES / partitions)
    count = np.zeros(NKEYS, dtype=np.int64)
    xsum = np.zeros(NKEYS)
    ysum = np.zeros(NKEYS)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(partitions):
        rng = np.random.default_rng(i)
        key = rng.integers(0, NKEYS, rows)
        x = rng.random(rows)
        y = rng.standard_normal(rows)
        frame = pd.DataFrame({"key": key, "x": x, "y": y, "z": np.arange(rows) + i * rows})
        frame.to_parquet(directory / f"part-{i:04d}.parquet", index=False)
        count += np.bincount(key, minlength=NKEYS)
        xsum += np.bincount(key, weights=x, minlength=NKEYS)
        ysum += np.bincount(key, weights=y, minlength=NKEYS)
    expected = {"rows": int(count.sum()), "count": count.tolist(), "xsum": xsum.tolist(),
                "ymean": (ysum / np.maximum(count, 1)).tolist(), "partitions": partitions,
                "gb": gb}
    (directory / "expected.json").write_text(json.dumps(expected))
    return expected


def dataset(directory: Path, gb: float, partitions: int) -> dict:
    marker = directory / "expected.json"
    if marker.exists():
        expected = json.loads(marker.read_text())
        if expected["gb"] == gb and expected["partitions"] == partitions:
            return expected
        shutil.rmtree(directory)
    print(f"generating {gb} GB in {partitions} parquet files under {directory} ...", flush=True)
    started = time.time()
    expected = generate(directory, gb, partitions)
    print(f"  done in {time.time() - started:.0f} s", flush=True)
    return expected


# -- the workloads -------------------------------------------------------------------------
def partition_stats(frame):
    import pandas as pd
    keys = np.unique(frame["key"].to_numpy())
    return pd.DataFrame({"rows": [len(frame)], "xsum": [float(frame["x"].sum())],
                         "keys": [keys.tobytes()]})


def workloads(directory: Path):
    import dask.dataframe as dd

    def groupby():
        frame = dd.read_parquet(str(directory))
        return frame.groupby("key").agg(x=("x", "sum"), y=("y", "mean"), n=("x", "count"))

    def shuffle():
        frame = dd.read_parquet(str(directory))
        shuffled = frame.shuffle("key", shuffle_method="tasks")
        return shuffled.map_partitions(partition_stats, meta={"rows": "i8", "xsum": "f8",
                                                              "keys": "O"})
    return {"groupby": groupby, "shuffle": shuffle}


def check(name: str, result, expected: dict) -> str | None:
    """None when right, else what is wrong."""
    count = np.array(expected["count"])
    if name == "groupby":
        result = result.sort_index()
        if not np.array_equal(result.index.to_numpy(), np.arange(NKEYS)):
            return "keys differ"
        if not np.array_equal(result["n"].to_numpy(), count):
            return "counts differ"
        if not np.allclose(result["x"].to_numpy(), expected["xsum"], rtol=1e-9):
            return "sums differ"
        if not np.allclose(result["y"].to_numpy(), expected["ymean"], rtol=1e-9, atol=1e-12):
            return "means differ"
        return None
    if int(result["rows"].sum()) != expected["rows"]:
        return f"{int(result['rows'].sum())} rows, expected {expected['rows']}"
    if not np.isclose(result["xsum"].sum(), sum(expected["xsum"]), rtol=1e-9):
        return "sum of x differs"
    seen = np.concatenate([np.frombuffer(k, dtype=np.int64) for k in result["keys"]])
    if len(seen) != len(np.unique(seen)):
        return "a key is in more than one partition"
    if len(seen) != int((count > 0).sum()):
        return "keys are missing"
    return None


# -- the clusters --------------------------------------------------------------------------
class Cluster:
    def __init__(self, system: str, memory_limit: str, log_dir: Path, bin_dir: Path,
                 worker_options: tuple[str, ...] = ()):
        self.system = system
        self.worker_options = worker_options
        self.memory_limit = memory_limit
        self.log_dir = log_dir
        self.bin_dir = bin_dir
        self.procs: list[subprocess.Popen] = []
        self.address = ""
        self.dashboard = 0

    def cli(self, name: str) -> str:
        candidate = self.bin_dir / name
        return str(candidate) if candidate.exists() else (shutil.which(name) or name)

    def spawn(self, name: str, argv: list[str]) -> Path:
        log = self.log_dir / f"{self.system}-{name}.log"
        with open(log, "wb") as handle:
            self.procs.append(subprocess.Popen(argv, stdout=handle, stderr=handle,
                                               start_new_session=True,
                                               env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        return log

    @staticmethod
    def wait_for(log: Path, text: str, timeout: float = 90) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in log.read_text(errors="replace").splitlines():
                if text in line:
                    return line
            time.sleep(0.1)
        raise RuntimeError(f"no {text!r} in {log} after {timeout} s:\n{log.read_text()[-2000:]}")

    def start(self) -> None:
        port = free_port()
        spill_root = self.spill_root = Path(tempfile.mkdtemp(prefix=f"spill-{self.system}-"))
        if self.system == "dist":
            self.dashboard = free_port()
            log = self.spawn("center", [self.cli("dcenter"), "--host", "127.0.0.1", "--port",
                                        str(port), "--dashboard-port", str(self.dashboard)])
            self.wait_for(log, "Start center at")
            self.address = f"127.0.0.1:{port}"
            logs = [self.spawn(f"worker{i}", [
                self.cli("dworker"), self.address, "--nthreads", "1", "--name", f"w{i}",
                "--memory-limit", self.memory_limit, "--local-directory", str(spill_root),
                *self.worker_options])
                for i in range(2)]
            for log in logs:
                self.wait_for(log, "Registered with center at")
        else:
            log = self.spawn("scheduler", [self.cli("dask"), "scheduler", "--host", "127.0.0.1",
                                           "--port", str(port), "--no-dashboard"])
            self.wait_for(log, "Scheduler at")
            self.address = f"tcp://127.0.0.1:{port}"
            logs = [self.spawn(f"worker{i}", [
                self.cli("dask"), "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}", "--memory-limit",
                self.memory_limit, "--local-directory", str(spill_root / f"w{i}")])
                for i in range(2)]
            for log in logs:
                self.wait_for(log, "Registered to")
        self.nannies = [p.pid for p in self.procs[1:]]
        self.first_children = self.worker_processes()

    def worker_processes(self) -> list[int]:
        """The process running each worker's tasks (the nanny's child)."""
        found = []
        for pid in self.nannies:
            try:
                children = psutil.Process(pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            # dask's nanny also runs a resource tracker; the worker is the largest child
            children = sorted(children, key=lambda p: _rss(p), reverse=True)
            found.append(children[0].pid if children else 0)
        return found

    def spill_written(self, client) -> int:
        return self._spill_bytes(client, "spill_written", "disk-write")

    def spill_read(self, client) -> int:
        """Bytes read back from spill files, all workers together, since they started."""
        return self._spill_bytes(client, "spill_read", "disk-read")

    def _spill_bytes(self, client, dist_metric: str, dask_metric: str) -> int:
        return sum(self.spill_per_worker(client, dist_metric, dask_metric).values())

    def spill_per_worker(self, client, dist_metric: str = "spill_written",
                         dask_metric: str = "disk-write") -> dict[str, int]:
        """Each worker's own counter (by name): bytes written to spill files (or read back,
        with ``spill_read`` and ``disk-read``) since it started."""
        if self.system == "dist":
            url = f"http://127.0.0.1:{self.dashboard}/api/workers"
            with urllib.request.urlopen(url, timeout=10) as reply:
                rows = json.load(reply)
            rows = rows["workers"] if isinstance(rows, dict) else rows
            return {row["name"]: row.get(dist_metric, 0) for row in rows}
        totals = client.run(lambda dask_worker: (dask_worker.name, int(
            dask_worker.data.cumulative_metrics.get((dask_metric, "bytes"), 0))))
        return dict(totals.values())

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if getattr(self, "spill_root", None) is not None:
            shutil.rmtree(self.spill_root, ignore_errors=True)


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeakSampler(threading.Thread):
    """Peak RSS of each worker process (whichever process it is now), every 50 ms."""

    def __init__(self, cluster: Cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.peaks = [0, 0]
        self.pids: set[int] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            for i, pid in enumerate(self.cluster.worker_processes()):
                if pid:
                    self.pids.add(pid)
                    try:
                        rss = _rss(psutil.Process(pid))
                    except psutil.Error:  # gone meanwhile (restarted)
                        continue
                    self.peaks[i] = max(self.peaks[i], rss)


def run_system(system: str, args, directory: Path, expected: dict, log_dir: Path) -> dict:
    import dask

    # The same graph for both: left to itself, dask.dataframe picks its default shuffle by
    # the scheduler it finds (dask.distributed's P2P extension for a dask Client, the
    # single-machine partd "disk" shuffle for any other), so the groupby's shuffle would
    # differ in kind between the two systems.
    dask.config.set({"dataframe.shuffle.method": "tasks"})

    cluster = Cluster(system, args.memory_limit, log_dir, Path(sys.executable).parent)
    results: dict = {}
    cluster.start()
    try:
        if system == "dist":
            from dist_client import Executor
            client = Executor(cluster.address)
            compute = lambda c: dask.compute(c, scheduler=client.get)[0]
        else:
            from distributed import Client
            client = Client(cluster.address)
            compute = lambda c: client.compute(c).result()
        for name, build in workloads(directory).items():
            if name not in args.workloads.split(","):
                continue
            collection = build()
            sampler = PeakSampler(cluster)
            sampler.start()
            written_before = cluster.spill_written(client)
            started = time.perf_counter()
            error = None
            try:
                value = compute(collection)
                wrong = check(name, value, expected)
            except Exception as exc:  # noqa: BLE001 -- reported as the workload's outcome
                error, wrong = f"{type(exc).__name__}: {exc}", None
            wall = time.perf_counter() - started
            sampler.stopping.set()
            sampler.join()
            restarts = len(sampler.pids - set(cluster.first_children))
            results[name] = {
                "wall_s": round(wall, 2), "correct": error is None and wrong is None,
                "problem": error or wrong, "peak_rss_mb": [round(p / 1e6) for p in
                                                           sampler.peaks],
                # A restarted worker starts counting from 0: then this is a lower bound.
                "spilled_mb": max(0, round((cluster.spill_written(client) - written_before)
                                           / 1e6)),
                "restarts": restarts}
            print(f"{system:5} {name:8} {json.dumps(results[name])}", flush=True)
            cluster.first_children = cluster.worker_processes()
            time.sleep(2)  # let released results leave before the next workload
        client.close()
    finally:
        cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="dist,dask")
    parser.add_argument("--gb", type=float, default=2.4, help="dataset size in memory")
    parser.add_argument("--partitions", type=int, default=120,
                        help="20 MB each by default; 40 MB partitions make both systems' "
                        "shuffle tasks outgrow 400 MB workers")
    parser.add_argument("--memory-limit", default="400MB", help="per worker, both systems")
    parser.add_argument("--workloads", default="groupby,shuffle")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) /
                                                  "dist-bench-spill-data"),
                        help="kept between runs; regenerated when --gb or --partitions change")
    parser.add_argument("--output", default=str(HERE / "results" / "spill-latest.json"))
    args = parser.parse_args()
    directory = Path(args.data_dir)
    expected = dataset(directory, args.gb, args.partitions)
    log_dir = Path(tempfile.mkdtemp(prefix="dist-bench-spill-logs-"))
    report = {"gb": args.gb, "partitions": args.partitions, "memory_limit": args.memory_limit,
              "workers": 2, "threads_per_worker": 1, "cpus": os.cpu_count(), "systems": {}}
    for system in args.systems.split(","):
        report["systems"][system] = run_system(system, args, directory, expected, log_dir)
    write_report(report, Path(args.output), log_dir, outcome)


def outcome(result: dict) -> str:
    return "yes" if result["correct"] else "NO: " + str(result["problem"])


def write_report(report: dict, output: Path, log_dir: Path, outcome) -> None:
    """Write ``report`` as JSON to ``output`` and print one line per system and workload,
    ``outcome(result)`` in the last column."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    width = max((len(name) for runs in report["systems"].values() for name in runs), default=8)
    print(f"\n{'system':6} {'workload':{width}} {'wall s':>7} {'peak RSS MB (w0, w1)':>21} "
          f"{'spilled MB':>10} {'read MB':>8} {'restarts':>8} correct")
    for system, runs in report["systems"].items():
        for name, r in runs.items():
            peaks = ", ".join(map(str, r["peak_rss_mb"]))
            print(f"{system:6} {name:{width}} {r['wall_s']:7.1f} {peaks:>21} "
                  f"{r['spilled_mb']:10} {r.get('read_back_mb', '-'):>8} {r['restarts']:8} "
                  f"{outcome(r)}")
    print(f"\nlogs: {log_dir}\nresults: {output}")


if __name__ == "__main__":
    main()
