"""Throughput at scale: a million-task map, the center's memory, and several clients at once.

Starts the usual cluster (one ``dcenter``, two single-threaded ``dworker``s, from the command
line) and measures, in one invocation:

1. the rate of a 10,000-task ``Executor.map`` + ``gather`` (the reference, median of three);
2. ``--tasks`` tasks (default 1,000,000) the two ways a user would send them: one ``map`` and
   one ``gather``, and ``map``/``gather``/release in chunks of ``--chunk`` tasks; for each,
   tasks/s, the center's peak RSS (its ``VmHWM``, reset before the phase, and a sampler as a
   cross-check) and bytes per task, (peak RSS - idle RSS) / N;
3. a dask.array graph of about ``--array-tasks`` tasks (default 1,000,000: ``arange`` in
   chunks of 4, each chunk summed, the sums added by a tree of 16-way sums), run through
   ``Executor.get`` as ``compute`` sends it: tasks/s against the same graph's rate at 10,000
   tasks (median of three; a graph's task costs several times a map's, so the map's rate is
   no reference for it), the center's peak RSS per task and the client's peak, the sum
   checked;
4. ``--clients`` client processes (default four) each mapping ``--client-tasks`` tasks at the
   same moment, against one client mapping all of them: the ratio of total tasks/s, and the
   ratio's ceiling on this machine: (busy + idle) / busy, where busy is the cores one
   client's run kept busy (the CPU of the center, the workers and the client over the run's
   wall time) and idle the cores the machine left idle meanwhile.

The map and graph phases also report the CPU each role spent per task (center, workers,
client): a cost per task growing with N is what a rate falling with N comes from, and it is
steadier than the rate on a shared machine. Every result is checked by its sum. Writes JSON
into benchmarks/results/.

    python benchmarks/scale.py                       # 1,000,000 tasks
    python benchmarks/scale.py --tasks 300000 --skip one-map
    python benchmarks/scale.py --skip chunked,one-map,clients --array-tasks 200000
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_tasks as t  # noqa: E402
from clusters import DistCluster  # noqa: E402
from procs import Spawner, tree_cpu  # noqa: E402

GOALS = {"rate_ratio_1m_vs_10k": 0.8, "center_peak_rss_bytes": 2**30, "clients_ratio": 1.5}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def proc_status(pid: int, field: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class PeakRss:
    """The center's resident peak over one phase: ``VmHWM`` after resetting it (writing 5 to
    clear_refs), and the largest ``VmRSS`` a 20 ms sampler saw, in case the reset is refused."""

    def __init__(self, pid: int):
        self.pid = pid
        self.sampled = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            pass
        self.idle = proc_status(self.pid, "VmRSS")
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.sampled = max(self.sampled, proc_status(self.pid, "VmRSS"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sampled = max(self.sampled, proc_status(self.pid, "VmRSS"))
        self.hwm = proc_status(self.pid, "VmHWM")

    def figures(self, n: int) -> dict:
        peak = max(self.hwm, self.sampled) if self.hwm_reset else self.sampled
        return {"center_idle_rss": self.idle, "center_peak_rss": peak,
                "center_peak_rss_sampled": self.sampled, "center_vmhwm": self.hwm,
                "vmhwm_reset": self.hwm_reset,
                "center_bytes_per_task": round((peak - self.idle) / n, 1)}


class HandshakeProbe:
    """A client's handshake with the center every ``interval`` seconds, from a thread of its
    own, timed: how long a newcomer waits while others keep the center busy."""

    def __init__(self, address: str, interval: float = 0.1):
        self.address, self.interval = address, interval
        self.samples: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HandshakeProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        import asyncio

        from dist_protocol.comm import connect

        async def probe() -> None:
            while not self._stop.is_set():
                begin = time.perf_counter()
                try:
                    comm = await connect(self.address, role="client", name="probe")
                except Exception as exc:  # noqa: BLE001 -- a refused or slow handshake is data
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                else:
                    self.samples.append(time.perf_counter() - begin)
                    comm.close()
                    await comm.closed
                await asyncio.sleep(self.interval)
        asyncio.run(probe())

    def figures(self) -> dict:
        ms = sorted(1000 * s for s in self.samples)
        pick = (lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))], 2)) if ms else \
            (lambda q: None)
        return {"handshakes": len(ms), "handshake_ms_p50": pick(0.5),
                "handshake_ms_p99": pick(0.99), "handshake_ms_max": ms[-1] if ms else None,
                "handshake_failures": self.failures}


def expected_sum(start: int, stop: int) -> int:
    return sum(range(start, stop)) + (stop - start)  # each task is inc(x) = x + 1


def map_once(ex, start: int, stop: int) -> int:
    futures = ex.map(t.inc, range(start, stop))
    total = sum(ex.gather(futures))
    for future in futures:
        future.release()
    return total


class CpuPerTask:
    """CPU seconds each role spent over one phase, per task: the center, the workers with
    their nannies, and this (the client's) process. On a shared machine what a task costs is
    steadier than how long the phase took, and a cost per task that grows with the phase's
    size is what a rate falling with size comes from."""

    def __init__(self, center_pid: int, worker_pids: list[int]):
        self.servers = {"center": [center_pid], "workers": worker_pids}

    def __enter__(self) -> CpuPerTask:
        self.begin = {role: sum(tree_cpu(pid) for pid in pids)
                      for role, pids in self.servers.items()}
        self.begin["client"] = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.spent = {role: sum(tree_cpu(pid) for pid in pids) - self.begin[role]
                      for role, pids in self.servers.items()}
        self.spent["client"] = time.process_time() - self.begin["client"]

    def figures(self, n: int) -> dict:
        return {"cpu_us_per_task": {role: round(seconds / n * 1e6, 1)
                                    for role, seconds in self.spent.items()}}


def rate_10k(ex, cluster: DistCluster, repeats: int = 3) -> dict:
    samples = []
    with CpuPerTask(cluster.center_pid, cluster.worker_pids) as cpu:
        for _ in range(repeats):
            begin = time.perf_counter()
            total = map_once(ex, 0, 10_000)
            samples.append(10_000 / (time.perf_counter() - begin))
            assert total == expected_sum(0, 10_000), total
    return {"tasks_per_s": statistics.median(samples), "samples": samples,
            **cpu.figures(repeats * 10_000)}


def big_map(ex, cluster: DistCluster, n: int, chunk: int) -> dict:
    """``n`` tasks in maps of ``chunk`` (one map when ``chunk >= n``), each gathered, summed
    and released before the next; the clock covers submission too."""
    gc.collect()
    total = 0
    with PeakRss(cluster.center_pid) as rss, \
            CpuPerTask(cluster.center_pid, cluster.worker_pids) as cpu:
        begin = time.perf_counter()
        for start in range(0, n, chunk):
            total += map_once(ex, start, min(n, start + chunk))
        elapsed = time.perf_counter() - begin
    assert total == expected_sum(0, n), total
    return {"n": n, "chunk": min(chunk, n), "seconds": elapsed, "tasks_per_s": n / elapsed,
            **rss.figures(n), **cpu.figures(n)}


ARRAY_CHUNK = 4  # elements per chunk: tiny chunks, so the graph is all scheduling
ARRAY_SPLIT = 16  # inputs per partial sum of the tree reduction


def array_chunks_for(tasks: int) -> int:
    """Chunks of an array whose summing graph has about ``tasks`` tasks: two per chunk (one
    makes it, one sums it) and the tree of partial sums above them."""
    return max(1, round(tasks / (2 + 1 / (ARRAY_SPLIT - 1))))


def array_graph(ex, cluster: DistCluster, tasks: int) -> dict:
    """``da.arange(...).sum()`` of about ``tasks`` tasks, computed through the cluster as
    ``compute(scheduler=ex.get)`` does: the whole graph in one submission. Besides the
    center's peak, this process's (the client's, from building dask's graph to the result),
    whose reset needs the same ``clear_refs`` as the center's."""
    import dask.array as da

    chunks = array_chunks_for(tasks)
    size = chunks * ARRAY_CHUNK
    total = da.arange(size, chunks=ARRAY_CHUNK).sum(split_every=ARRAY_SPLIT)
    submitted = [0]

    def get(dsk, keys, **kwargs):  # (dask hands schedulers an expression nowadays)
        graph = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else dsk
        submitted[0] = len(graph)
        return ex.get(graph, keys, **kwargs)

    gc.collect()
    with PeakRss(cluster.center_pid) as rss, PeakRss(os.getpid()) as client, \
            CpuPerTask(cluster.center_pid, cluster.worker_pids) as cpu:
        begin = time.perf_counter()
        got = total.compute(scheduler=get)
        elapsed = time.perf_counter() - begin
    assert int(got) == size * (size - 1) // 2, (got, size)
    n = submitted[0]
    return {"n": n, "chunks": chunks, "seconds": elapsed, "tasks_per_s": n / elapsed,
            **rss.figures(n), "client_peak_rss": client.figures(n)["center_peak_rss"],
            **cpu.figures(n)}


def array_rate_10k(ex, cluster: DistCluster, repeats: int = 3) -> dict:
    """The array graph's reference: its rate at about 10,000 tasks (median of ``repeats``),
    against which the large graph's rate is read (a graph's task costs more than a map's
    ``inc``, so the map's rate is not the graph's reference)."""
    runs = [array_graph(ex, cluster, 10_000) for _ in range(repeats)]
    return {"tasks_per_s": statistics.median(r["tasks_per_s"] for r in runs),
            "samples": [r["tasks_per_s"] for r in runs],
            "cpu_us_per_task": runs[len(runs) // 2]["cpu_us_per_task"]}


def cpu_line(run: dict) -> str:
    cost = run["cpu_us_per_task"]
    return (f"CPU µs per task: center {cost['center']:.0f}, workers {cost['workers']:.0f}, "
            f"client {cost['client']:.0f}")


def client_process(address: str, offset: int, n: int, barrier, out) -> None:
    from dist_client import Executor

    connecting = time.perf_counter()
    with Executor(address) as ex:
        connected = time.perf_counter() - connecting
        map_once(ex, -100 - offset, -offset)  # connection and function warm
        barrier.wait()
        cpu = time.process_time()  # every thread of this process: the caller's and the I/O's
        begin = time.time()
        total = map_once(ex, offset, offset + n)
        end = time.time()
        cpu = time.process_time() - cpu
    out.put({"offset": offset, "n": n, "begin": begin, "end": end, "cpu_s": cpu,
             "connect_s": connected, "ok": total == expected_sum(offset, offset + n)})


def concurrent_clients(address: str, clients: int, per_client: int, center_pid: int,
                       worker_pids: list[int]) -> dict:
    """``clients`` processes released by one barrier; the span runs from the first start to
    the last finish. CPU per task of each process (the center, the workers with their
    nannies, the clients from the barrier to their gather's end): on a shared machine what
    the tasks cost is steadier than how long they took."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(clients), ctx.Queue()
    procs = [ctx.Process(target=client_process,
                         args=(address, i * per_client * 10, per_client, barrier, out))
             for i in range(clients)]
    servers = {"center": [center_pid], "workers": worker_pids}
    cpu = {role: sum(tree_cpu(pid) for pid in pids) for role, pids in servers.items()}
    idle = psutil.cpu_times().idle  # the whole machine's, every core's
    for p in procs:
        p.start()
    try:
        with HandshakeProbe(address) as probe:
            runs = [out.get(timeout=600) for _ in procs]
        cpu = {role: sum(tree_cpu(pid) for pid in pids) - cpu[role]
               for role, pids in servers.items()}
        idle = psutil.cpu_times().idle - idle
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert all(r["ok"] for r in runs), runs
    span = max(r["end"] for r in runs) - min(r["begin"] for r in runs)
    spent = sum(cpu.values()) + sum(r["cpu_s"] for r in runs)
    return {"clients": clients, "tasks_per_client": per_client, "seconds": span,
            "cores_busy": round(spent / span, 2), "cores_idle": round(idle / span, 2),
            "tasks_per_s": clients * per_client / span,
            "per_client_seconds": [r["end"] - r["begin"] for r in runs],
            "connect_seconds": [r["connect_s"] for r in runs],
            "cpu_us_per_task": {**{role: round(seconds / (clients * per_client) * 1e6, 1)
                                   for role, seconds in cpu.items()},
                                "clients": round(sum(r["cpu_s"] for r in runs)
                                                 / (clients * per_client) * 1e6, 1)},
            "newcomer": probe.figures()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000,
                        help="tasks per map in the chunked run (default 100,000)")
    parser.add_argument("--skip", default="",
                        help="comma-separated phases to leave out: "
                             "one-map,chunked,array,clients")
    parser.add_argument("--array-tasks", type=int, default=1_000_000,
                        help="tasks of the dask.array graph (about; default 1,000,000)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--client-tasks", type=int, default=50_000,
                        help="tasks each concurrent client maps (default 50,000)")
    parser.add_argument("--output", type=Path,
                        help="JSON path (default: results/scale-<time>.json)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = HERE / "results"
    log_dir = results / "logs" / f"scale-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    output = args.output or results / f"scale-{stamp}.json"
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    doc: dict = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                 "command": " ".join(sys.argv),
                 "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version()},
                 "load_average_before": [round(x, 2) for x in os.getloadavg()],
                 "goals": GOALS, "logs": str(log_dir)}
    spawner = Spawner(log_dir, child_env())
    cluster = DistCluster(spawner, Path(sys.executable).parent)
    from dist_client import Executor

    try:
        cluster.start()
        with Executor(cluster.address) as ex:
            map_once(ex, -200, 0)
            doc["rate_10k"] = rate_10k(ex, cluster)
            print(f"10k: {doc['rate_10k']['tasks_per_s']:,.0f} tasks/s; "
                  f"{cpu_line(doc['rate_10k'])}", flush=True)
            for name, chunk in (("chunked", args.chunk), ("one-map", args.tasks)):
                if name in skip:
                    continue
                run = big_map(ex, cluster, args.tasks, chunk)
                run["ratio_to_10k"] = run["tasks_per_s"] / doc["rate_10k"]["tasks_per_s"]
                doc[name] = run
                print(f"{name} {args.tasks:,}: {run['tasks_per_s']:,.0f} tasks/s "
                      f"({run['ratio_to_10k']:.2f}x 10k), center peak "
                      f"{run['center_peak_rss'] / 2**20:,.0f} MiB (idle "
                      f"{run['center_idle_rss'] / 2**20:,.0f}), "
                      f"{run['center_bytes_per_task']:,.0f} B/task; {cpu_line(run)}", flush=True)
            if "array" not in skip:
                doc["array_10k"] = reference = array_rate_10k(ex, cluster)
                print(f"array graph 10k: {reference['tasks_per_s']:,.0f} tasks/s; "
                      f"{cpu_line(reference)}", flush=True)
                run = array_graph(ex, cluster, args.array_tasks)
                run["ratio_to_10k"] = run["tasks_per_s"] / doc["rate_10k"]["tasks_per_s"]
                run["ratio_to_array_10k"] = run["tasks_per_s"] / reference["tasks_per_s"]
                doc["array"] = run
                print(f"array graph {run['n']:,} tasks: {run['tasks_per_s']:,.0f} tasks/s "
                      f"({run['ratio_to_array_10k']:.2f}x the 10k graph's, "
                      f"{run['ratio_to_10k']:.2f}x the 10k map's), center peak "
                      f"{run['center_peak_rss'] / 2**20:,.0f} MiB (idle "
                      f"{run['center_idle_rss'] / 2**20:,.0f}), "
                      f"{run['center_bytes_per_task']:,.0f} B/task, client peak "
                      f"{run['client_peak_rss'] / 2**20:,.0f} MiB; {cpu_line(run)}",
                      flush=True)
        if "clients" not in skip:
            total = args.clients * args.client_tasks
            one = concurrent_clients(cluster.address, 1, total, cluster.center_pid,
                                     cluster.worker_pids)
            many = concurrent_clients(cluster.address, args.clients, args.client_tasks,
                                      cluster.center_pid, cluster.worker_pids)
            # More clients can only add what one left idle of the machine's cores (on a
            # machine shared with other work, what that work left too): at the same CPU per
            # task, their total rate is at most (busy + idle) / busy times one client's.
            ceiling = min(args.clients,
                          (one["cores_busy"] + one["cores_idle"]) / one["cores_busy"])
            doc["clients"] = {"one": one, "many": many, "ratio_ceiling": round(ceiling, 2),
                              "ratio": many["tasks_per_s"] / one["tasks_per_s"]}
            print(f"1 client {total:,}: {one['tasks_per_s']:,.0f} tasks/s; {args.clients} "
                  f"clients x {args.client_tasks:,}: {many['tasks_per_s']:,.0f} tasks/s "
                  f"({doc['clients']['ratio']:.2f}x); load {os.getloadavg()[0]:.1f}; one "
                  f"client kept {one['cores_busy']:.2f} of {psutil.cpu_count()} cores busy "
                  f"and left {one['cores_idle']:.2f} idle, so {args.clients} can reach "
                  f"{ceiling:.2f}x at most", flush=True)
            for label, run in (("1 client", one), (f"{args.clients} clients", many)):
                cost, probe = run["cpu_us_per_task"], run["newcomer"]
                print(f"  {label}: CPU µs per task: center {cost['center']:.0f}, workers "
                      f"{cost['workers']:.0f}, clients {cost['clients']:.0f}; a newcomer's "
                      f"handshake ms p50 {probe['handshake_ms_p50']} p99 "
                      f"{probe['handshake_ms_p99']} max {probe['handshake_ms_max']}, failed "
                      f"{len(probe['handshake_failures'])}; the clients' connects "
                      f"{max(run['connect_seconds']):.2f} s at most", flush=True)
    except KeyboardInterrupt:
        doc["interrupted"] = True
    finally:
        cluster.stop()
    doc["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(doc, indent=2))
    print(f"JSON: {output}")
    return 130 if doc.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
