"""A large value spilled while the worker goes on: its heartbeats keep flowing, so a center
with a short heartbeat timeout keeps a healthy worker whose spill takes longer than it.

Writing 400 MB to disk (compressed with zstd here, to make it take a while) held the
worker's event loop for a second or two; meanwhile it sent no heartbeat, and past the
center's timeout it was removed with every result it held. Each test waits for a heartbeat
sent while the value is being written (or read), which no worker sent before; the timeouts
are short, though not so short that a loaded machine's own pauses reach them. (A task
reading such a value back still holds the loop: not tested here.)"""
from __future__ import annotations

import concurrent.futures

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


def test_heartbeats_flow_while_a_large_value_is_written(make_cluster, wait_until):
    cluster = make_cluster(n_workers=0, heartbeat_timeout=2.0)
    worker = cluster.processes.start_worker(
        cluster.address, "--memory-limit", str(2000 * MB), "--memory-target-fraction", "0.1",
        "--memory-spill-fraction", "0.9", "--spill-compression", "zstd",
        "--heartbeat-interval", "0.05", name="spiller")
    cluster.workers.append(worker)
    executor = cluster.executor()

    def metrics():
        rows = list(cluster.worker_table(executor).values())
        return rows[0]["metrics"] if rows else {}

    value = executor.submit(compressible, VALUE)
    # Heard from while its value is being written: the loop sends heartbeats meanwhile.
    wait_until(lambda: metrics().get("spill_writing", 0) >= VALUE, timeout=30,
               what="a heartbeat sent while the value was being written", interval=0.01)
    written = wait_until(lambda: (m := metrics()).get("spill_writing") == 0
                         and m.get("spilled", 0) >= VALUE and m, timeout=RESULT_TIMEOUT,
                         what="the value on disk")
    assert written["spill_written"] > 0
    assert "silent for" not in cluster.center.output(), "the center removed the worker"
    assert len(worker.matching("Registered with center at")) == 1
    assert value.status == "finished"  # (held all along: never lost with a removal)


def test_heartbeats_flow_while_a_large_value_is_read_back_for_a_client(make_cluster,
                                                                       wait_until):
    """The file of a spilled value sent to a client (or a peer) as it is: read and
    decompressed on a thread, while the loop goes on."""
    cluster = make_cluster(n_workers=0, heartbeat_timeout=5.0)
    worker = cluster.processes.start_worker(
        cluster.address, "--memory-limit", str(2000 * MB), "--memory-target-fraction", "0.1",
        "--memory-spill-fraction", "0.9", "--spill-compression", "zstd",
        "--heartbeat-interval", "0.05", name="spiller")
    cluster.workers.append(worker)
    executor = cluster.executor()

    def metrics():
        rows = list(cluster.worker_table(executor).values())
        return rows[0]["metrics"] if rows else {}

    value = executor.submit(compressible, VALUE)
    wait_until(lambda: (m := metrics()).get("spill_writing") == 0
               and m.get("spilled", 0) >= VALUE, timeout=RESULT_TIMEOUT, what="the value on disk")
    with concurrent.futures.ThreadPoolExecutor(1) as background:  # (the gather waits)
        result = background.submit(value.result, RESULT_TIMEOUT)
        wait_until(lambda: metrics().get("spill_reading", 0) >= VALUE, timeout=30,
                   what="a heartbeat sent while the value was being read back", interval=0.01)
        assert result.result(timeout=RESULT_TIMEOUT).shape == (VALUE // 8,)
    assert "silent for" not in cluster.center.output(), "the center removed the worker"
    assert len(worker.matching("Registered with center at")) == 1
