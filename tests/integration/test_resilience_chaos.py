"""Chaos: a 2,000-task graph with dependencies on three workers under nannies, while a helper
SIGKILLs a random worker process about every second. Every result must be right and no future
left pending; the helper stops by itself when the graph is done or its time is up."""
from __future__ import annotations

import random
import threading
import time

import pytest

pytestmark = pytest.mark.timeout(180)

KILL_EVERY = 1.0  # seconds between kills, give or take a third
KILLING_AT_MOST = 40.0  # seconds: then the graph finishes in peace
WIDTH = 500


def inc(x):
    time.sleep(0.005)
    return x + 1


def add(a, b):
    time.sleep(0.005)
    return a + b


def total(values):
    return sum(values)


def build(executor):
    """Five layers, 2,000 tasks; returns the futures of each layer."""
    xs = executor.map(inc, range(WIDTH))
    ys = [executor.submit(add, xs[i], xs[(i + 1) % WIDTH]) for i in range(WIDTH)]
    zs = [executor.submit(add, ys[i], ys[(i + 7) % WIDTH]) for i in range(WIDTH)]
    ws = [executor.submit(add, zs[i], zs[i + 10]) for i in range(WIDTH - 10)]
    sums = [executor.submit(total, ws[i::10]) for i in range(10)]
    return [xs, ys, zs, ws, sums]


def expected():
    xs = [i + 1 for i in range(WIDTH)]
    ys = [xs[i] + xs[(i + 1) % WIDTH] for i in range(WIDTH)]
    zs = [ys[i] + ys[(i + 7) % WIDTH] for i in range(WIDTH)]
    ws = [zs[i] + zs[i + 10] for i in range(WIDTH - 10)]
    sums = [sum(ws[i::10]) for i in range(10)]
    return [xs, ys, zs, ws, sums]


class Killer(threading.Thread):
    """SIGKILLs the process running a random worker's tasks (never its nanny) until stopped."""

    def __init__(self, workers, seed: int):
        super().__init__(daemon=True, name="chaos killer")
        self.workers = workers
        self.random = random.Random(seed)
        self.stopped = threading.Event()
        self.killed: list[tuple[str, int]] = []

    def run(self) -> None:
        deadline = time.monotonic() + KILLING_AT_MOST
        while not self.stopped.wait(KILL_EVERY * self.random.uniform(0.67, 1.33)):
            if time.monotonic() > deadline:
                return
            victim = self.random.choice(self.workers)
            try:
                pid = victim.kill_worker_process()
            except (AssertionError, ProcessLookupError):
                continue  # between two worker processes: the nanny is starting the next one
            self.killed.append((victim.name, pid))


@pytest.mark.cluster(n_workers=3, nanny=True)
def test_a_graph_survives_workers_killed_every_second(cluster, executor, wait_until):
    seed = random.randrange(2**32)
    layers = build(executor)
    futures = [f for layer in layers for f in layer]
    assert len(futures) == 2000 and len({f.key for f in futures}) == 2000
    killer = Killer(cluster.workers, seed)
    killer.start()
    try:
        values = executor.gather(layers, timeout=150)
    finally:
        killer.stopped.set()
        killer.join()
    assert values == expected(), f"seed {seed}"
    assert [f for f in futures if f.status != "finished"] == [], f"seed {seed}"
    assert len(killer.killed) >= 3, f"only {len(killer.killed)} kills; seed {seed}"
    # The nannies bring every worker back, and the cluster computes as before.
    cluster.wait_for_workers(executor, 3, timeout=30)
    assert executor.gather(executor.map(inc, range(100)), timeout=30) == list(range(1, 101))
