"""One workload against one running cluster, as a client process of its own.

run.py starts this once per workload so a hang or crash costs only that workload. It talks to
run.py on stdout with lines starting ``@@`` (anything else there is ignored) and, with
``--hold``, keeps its client connected after the result until run.py has measured memory.

    python driver.py dask throughput --address tcp://127.0.0.1:8786 --workers A,B --n 10000
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time

import bench_tasks as t


def emit(tag: str, payload=None) -> None:
    line = f"@@{tag}" + ("" if payload is None else " " + json.dumps(payload))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- one API over the three systems -------------------------------------------------------
class ExecutorAdapter:
    """dist's Executor and dask's Client share the API the workloads use."""

    def __init__(self, system: str, address: str, workers: list[str]):
        self.system = system
        self.address = address
        self.workers = workers
        self.client = None

    def connect(self, deadline: float) -> None:
        if self.system == "dask":
            from distributed import Client

            self.client = Client(self.address, timeout=max(1.0, deadline - time.time()))
            return
        from dist_client import Executor

        # The center is listening before run.py says go, but allow it a moment to settle.
        while True:
            try:
                self.client = Executor(self.address)
                return
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)

    def version(self) -> str:
        from importlib.metadata import version

        return version("distributed" if self.system == "dask" else "dist-client")

    def submit(self, func, *args, workers=None, pure=True):
        kwargs = {"pure": pure}
        if workers is not None:
            kwargs["workers"] = workers
        return self.client.submit(func, *args, **kwargs)

    def map(self, func, seq):
        return self.client.map(func, seq)

    def gather(self, futures):
        return self.client.gather(futures)

    def result(self, future):
        return future.result()

    def scatter_one(self, value):
        return self.client.scatter([value])[0]

    def fan_in(self, futures):
        return self.client.submit(sum, futures)

    def wait_in_place(self, future, worker):
        """Block until ``future`` is computed without moving its data anywhere."""
        self.submit(t.place_of, future, workers=[worker], pure=False).result()

    def place_of_worker(self, worker):
        return self.submit(t.place, workers=[worker], pure=False).result()

    def holders(self, future):
        """Places holding ``future``'s data, or None when the system cannot say."""
        who_has = getattr(self.client, "who_has", None)
        if who_has is None:
            return None
        try:
            found = who_has([future])
            addresses = next(iter(found.values())) if found else []
        except Exception:  # noqa: BLE001 -- any failure means: no answer
            return None
        return {self.place_of_worker(a) for a in addresses}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class RayAdapter:
    """Ray with the same surface: tasks with num_cpus=1, nodes as workers."""

    def __init__(self, address: str):
        self.address = address
        self._remote: dict = {}

    def connect(self, deadline: float) -> None:
        import ray

        ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
        self.workers = []
        while True:
            self.workers = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
            if len(self.workers) >= 2 or time.time() > deadline:
                break
            time.sleep(0.05)

    def version(self) -> str:
        import ray

        return ray.__version__

    def _fn(self, func):
        import ray

        remote = self._remote.get(func)
        if remote is None:
            remote = self._remote[func] = ray.remote(num_cpus=1)(func)
        return remote

    def submit(self, func, *args, workers=None, pure=True):
        fn = self._fn(func)
        if workers is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            fn = fn.options(scheduling_strategy=NodeAffinitySchedulingStrategy(workers[0],
                                                                                soft=False))
        return fn.remote(*args)

    def map(self, func, seq):
        fn = self._fn(func)
        return [fn.remote(x) for x in seq]

    def gather(self, refs):
        import ray

        return ray.get(refs)

    def result(self, ref):
        import ray

        return ray.get(ref)

    def scatter_one(self, value):
        import ray

        return ray.put(value)

    def fan_in(self, refs):
        return self._fn(t.total).remote(*refs)

    def wait_in_place(self, ref, worker):
        import ray

        ray.wait([ref], fetch_local=False)

    def place_of_worker(self, worker):
        return worker

    def holders(self, ref):
        from ray.experimental import get_object_locations

        info = get_object_locations([ref]).get(ref) or {}
        return set(info.get("node_ids") or [])

    def close(self) -> None:
        import ray

        ray.shutdown()


def make_adapter(args):
    if args.system == "ray":
        return RayAdapter(args.address)
    return ExecutorAdapter(args.system, args.address, args.workers.split(",") if args.workers
                           else [])


# -- the workloads ------------------------------------------------------------------------
def latency(ex, n):
    for i in range(10):
        ex.result(ex.submit(t.inc, -1 - i))
    start = time.perf_counter()
    for i in range(n):
        assert ex.result(ex.submit(t.inc, i)) == i + 1
    elapsed = time.perf_counter() - start
    return {"value": elapsed / n * 1e3, "unit": "ms", "n": n, "seconds": elapsed}


def throughput(ex, n):
    ex.gather(ex.map(t.inc, range(-200, 0)))
    start = time.perf_counter()
    futures = ex.map(t.inc, range(n))
    results = ex.gather(futures)
    elapsed = time.perf_counter() - start
    assert len(results) == n and results[-1] == n
    del futures, results
    gc.collect()
    return {"value": n / elapsed, "unit": "tasks/s", "n": n, "seconds": elapsed}


def chain(ex, n):
    first = 10**9
    ex.result(ex.submit(t.inc, ex.submit(t.inc, -first)))
    start = time.perf_counter()
    future = ex.submit(t.inc, first)
    for _ in range(n - 1):
        future = ex.submit(t.inc, future)
    value = ex.result(future)
    elapsed = time.perf_counter() - start
    assert value == first + n, value
    return {"value": n / elapsed, "unit": "tasks/s", "n": n, "seconds": elapsed}


def fanin(ex, n):
    ex.result(ex.fan_in(ex.map(t.inc, range(-20, 0))))
    start = time.perf_counter()
    futures = ex.map(t.inc, range(n))
    value = ex.result(ex.fan_in(futures))
    elapsed = time.perf_counter() - start
    assert value == n * (n + 1) // 2, value
    return {"value": elapsed, "unit": "s", "n": n}


def scatter(ex, nbytes):
    import numpy as np

    array = np.ones(nbytes // 8, dtype=np.float64)
    start = time.perf_counter()
    future = ex.scatter_one(array)
    total, place = ex.result(ex.submit(t.sum_and_place, future))
    elapsed = time.perf_counter() - start
    assert total == array.size, total
    holders = ex.holders(future)
    return {"value": elapsed, "unit": "s", "nbytes": nbytes,
            "ran_where_data_is": None if holders is None else place in holders}


def w2w(ex, nbytes, reps=5):
    a, b = ex.workers[0], ex.workers[1]
    place_a, place_b = ex.place_of_worker(a), ex.place_of_worker(b)
    assert place_a != place_b, "both workers are one process"
    from rawsocket import RawPair

    rates, raw_rates, pinned = [], [], True
    raw = RawPair(nbytes)
    # One uncounted move first, as for the raw socket: it opens the worker-to-worker
    # connection and gets the receiver's allocator its first large block.
    for rep in range(reps + 1):
        # A raw transfer right before each move: the two rates then share the machine's load.
        raw_rate = raw.transfer()
        if rep:
            raw_rates.append(raw_rate)
        made = ex.submit(t.make_array, nbytes, workers=[a], pure=False)
        ex.wait_in_place(made, a)
        start = time.perf_counter()
        used = ex.submit(t.nbytes_and_place, made, workers=[b], pure=False)
        size, _, place = ex.result(used)
        elapsed = time.perf_counter() - start
        assert size == nbytes // 8 * 8, size
        pinned = pinned and place == place_b
        if rep:
            rates.append(size / 1e6 / elapsed)
        del made, used
        gc.collect()
        time.sleep(0.2)  # let the release reach the workers before the next copy lands
    raw.close()
    return {"value": statistics.median(rates), "unit": "MB/s", "best": max(rates),
            "runs": rates, "nbytes": nbytes, "ran_on_pinned_worker": pinned,
            "raw_socket_mb_s": statistics.median(raw_rates), "raw_socket_runs": raw_rates}


def startup(ex, t0, deadline):
    ex.connect(deadline)
    value = ex.result(ex.submit(t.inc, 1))
    elapsed = time.time() - t0
    assert value == 2
    return {"value": elapsed, "unit": "s"}


WORKLOADS = {"latency": latency, "throughput": throughput, "chain": chain, "fanin": fanin,
             "scatter": scatter, "w2w": w2w}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["dist", "dask", "ray"])
    parser.add_argument("workload", choices=[*WORKLOADS, "startup"])
    parser.add_argument("--address", default="", help="(start-up reads it from stdin)")
    parser.add_argument("--workers", default="")
    parser.add_argument("--n", type=int, default=0, help="task count or byte count")
    parser.add_argument("--hold", action="store_true",
                        help="after the result, stay connected until a line arrives on stdin")
    parser.add_argument("--wait-go", action="store_true",
                        help="once connected, print @@READY and wait for a line on stdin "
                             "(time for a profiler to attach)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    ex = make_adapter(args)
    if args.workload == "startup":
        import numpy  # noqa: F401  (imports belong before the clock starts, not in it)

        emit("READY")
        # run.py answers with the clock's start and the center's address once it listens.
        t0, ex.address = sys.stdin.readline().split()
        t0 = float(t0)
        result = startup(ex, t0, time.time() + args.timeout)
    else:
        ex.connect(time.time() + args.timeout)
        if args.wait_go:
            emit("READY")
            sys.stdin.readline()
        result = WORKLOADS[args.workload](ex, args.n)
    result["version"] = ex.version()
    emit("RESULT", result)
    if args.hold:
        gc.collect()
        sys.stdin.readline()
    ex.close()


if __name__ == "__main__":
    main()
