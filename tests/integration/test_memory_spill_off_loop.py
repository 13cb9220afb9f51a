"""A large value spilled while the worker goes on: its heartbeats keep flowing, so a center
with a short heartbeat timeout keeps a healthy worker whose spill takes longer than it.

Writing 400 MB to disk (compressed with zstd here, to make it take a while) held the
worker's event loop for a second or two; meanwhile it sent no heartbeat, and past the
center's timeout it was removed with every result it held; so did reading it back, for a
client or for a task. Each test waits for a heartbeat sent while the value is being written
(or read), which no worker sent before; the timeouts are short, though not so short that a
loaded machine's own pauses reach them."""
from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(180)

RESULT_TIMEOUT = 60
MB = 10**6
VALUE = 400 * MB


def compressible(nbytes):
    """Small whole numbers as floats: zstd takes its time over them. Made a piece at a time,
    so that the worker's loop gets its turns meanwhile (made at once, numpy holds the
    interpreter for as long as a spill takes)."""
    import numpy
    values = numpy.empty(nbytes // 8)
    rng = numpy.random.default_rng(3)
    step = 2**20
    for start in range(0, len(values), step):
        piece = values[start:start + step]
        piece[:] = rng.integers(0, 50, len(piece), dtype=numpy.uint8)
    return values


@dataclass
class SpillingWorker:
    """One worker whose target (10% of 2 GB) a 400 MB value passes, spilling with zstd and
    sending a heartbeat every 50 ms to a center that removes it after ``heartbeat_timeout``
    seconds of silence."""

    cluster: Any
    worker: Any
    executor: Any

    def metrics(self) -> dict:
        rows = list(self.cluster.worker_table(self.executor).values())
        return rows[0]["metrics"] if rows else {}

    def on_disk(self, wait_until: Callable[..., Any]) -> dict:
        """Wait until the value's file is whole; the metrics then."""
        return wait_until(lambda: (m := self.metrics()).get("spill_writing") == 0
                          and m.get("spilled", 0) >= VALUE and m, timeout=RESULT_TIMEOUT,
                          what="the value on disk")

    def kept(self) -> None:
        """Never removed by the center: heard from all along, and registered once."""
        assert "silent for" not in self.cluster.center.output(), "the center removed the worker"
        assert len(self.worker.matching("Registered with center at")) == 1


def spilling_worker(make_cluster, heartbeat_timeout: float) -> SpillingWorker:
    cluster = make_cluster(n_workers=0, heartbeat_timeout=heartbeat_timeout)
    worker = cluster.processes.start_worker(
        cluster.address, "--memory-limit", str(2000 * MB), "--memory-target-fraction", "0.1",
        "--memory-spill-fraction", "0.9", "--spill-compression", "zstd",
        "--heartbeat-interval", "0.05", name="spiller")
    cluster.workers.append(worker)
    return SpillingWorker(cluster, worker, cluster.executor())


def test_heartbeats_flow_while_a_large_value_is_written(make_cluster, wait_until):
    spiller = spilling_worker(make_cluster, heartbeat_timeout=2.0)
    value = spiller.executor.submit(compressible, VALUE)
    # Heard from while its value is being written: the loop sends heartbeats meanwhile.
    wait_until(lambda: spiller.metrics().get("spill_writing", 0) >= VALUE, timeout=30,
               what="a heartbeat sent while the value was being written", interval=0.01)
    assert spiller.on_disk(wait_until)["spill_written"] > 0
    spiller.kept()
    assert value.status == "finished"  # (held all along: never lost with a removal)


def test_heartbeats_flow_while_a_large_value_is_read_back_for_a_client(make_cluster,
                                                                       wait_until):
    """The file of a spilled value sent to a client (or a peer) as it is: read and
    decompressed on a thread, while the loop goes on."""
    spiller = spilling_worker(make_cluster, heartbeat_timeout=5.0)
    value = spiller.executor.submit(compressible, VALUE)
    spiller.on_disk(wait_until)
    with concurrent.futures.ThreadPoolExecutor(1) as background:  # (the gather waits)
        result = background.submit(value.result, RESULT_TIMEOUT)
        wait_until(lambda: spiller.metrics().get("spill_reading", 0) >= VALUE, timeout=30,
                   what="a heartbeat sent while the value was being read back", interval=0.01)
        assert result.result(timeout=RESULT_TIMEOUT).shape == (VALUE // 8,)
    spiller.kept()


def total(values):
    return float(values.sum())


def test_heartbeats_flow_while_a_task_reads_a_large_input_back(make_cluster, wait_until):
    """A task's input on disk is read back and unpickled on a thread while the task waits
    for it: read on the loop, the worker was removed after 1.0 s of silence."""
    spiller = spilling_worker(make_cluster, heartbeat_timeout=1.0)
    value = spiller.executor.submit(compressible, VALUE)
    spiller.on_disk(wait_until)
    summed = spiller.executor.submit(total, value)
    wait_until(lambda: spiller.metrics().get("spill_reading", 0) >= VALUE, timeout=30,
               what="a heartbeat sent while the task's input was being read back",
               interval=0.01)
    assert summed.result(timeout=RESULT_TIMEOUT) == total(compressible(VALUE))
    spiller.kept()
