"""One value near a worker's memory limit: spilled, read back and sent without a second copy
of it in memory, so that the worker holding it is not restarted for holding it twice.

Each test samples the resident memory of the worker's process from ``/proc/<pid>/statm``
every few milliseconds while the value is handled (the kernel's own high-water mark cannot be
used: the worker resets it as each task starts, to measure the task). A second copy of a
value lasts as long as its write to disk or its unpickling, hundreds of milliseconds."""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dist_client import wait

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the peak memory of a process from /proc")

RESULT_TIMEOUT = 60
MB = 10**6
LIMIT = 300 * MB


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@contextmanager
def peak_rss(pid: int, every: float = 0.002) -> Iterator[list[int]]:
    """Sample the resident memory of process ``pid`` until the block ends; the list yielded
    holds the highest seen (bytes) once it has."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        with open(f"/proc/{pid}/statm") as statm:
            while not done.is_set():
                statm.seek(0)
                try:
                    peak[0] = max(peak[0], int(statm.read().split()[1]) * PAGE)
                except ProcessLookupError:  # it exited (restarted): its peak is known
                    return
                done.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join(timeout=5)


def random_bytes(nbytes):
    import os
    return os.urandom(nbytes)


def head(value):
    return type(value).__name__, len(value), bytes(value[:16])


def small_worker(cluster):
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", str(LIMIT),
                                            nanny=True, name="small")
    cluster.workers.append(worker)
    return worker


def test_a_bytes_result_of_two_thirds_of_the_limit_is_never_held_twice(make_cluster):
    """200 MB of bytes on a 300 MB worker: above its target, so it spills as it is stored;
    read back for a task; sent to the client from its spill file. Pickled in band, the pickle
    was a second copy as it was written, and unpickling read the file into a buffer and
    copied it into the value: the process past 440 MB each time."""
    cluster = make_cluster(n_workers=0)
    worker = small_worker(cluster)
    executor = cluster.executor()
    with peak_rss(worker.worker_pid()) as peak:
        value = executor.submit(random_bytes, 200 * MB)
        wait([value], timeout=RESULT_TIMEOUT)  # (stored and spilled before a task reads it)
        described = executor.submit(head, value).result(timeout=RESULT_TIMEOUT)
        assert described[:2] == ("bytes", 200 * MB)
        gathered = value.result(timeout=RESULT_TIMEOUT)
    assert type(gathered) is bytes and len(gathered) == 200 * MB
    assert gathered[:16] == described[2]
    assert peak[0] < LIMIT, f"the worker's process reached {peak[0] / MB:.0f} MB"
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def random_array(nbytes):
    import numpy
    return numpy.random.default_rng(7).random(nbytes // 8)


def array_head(values):
    return type(values).__name__, values.nbytes, float(values[:1000].sum())


def test_a_task_reading_a_value_spilled_as_it_was_stored_gets_it_from_memory(make_cluster):
    """A 200 MB array on a 300 MB worker, read by a task queued behind the one making it: the
    array spills as it is stored, and the reader starts in the same batch of events, while the
    result's event still holds the array. Read back from its file there, it was in memory
    twice (440 MB)."""
    cluster = make_cluster(n_workers=0)
    worker = small_worker(cluster)
    executor = cluster.executor()
    with peak_rss(worker.worker_pid()) as peak:
        value = executor.submit(random_array, 200 * MB)
        described = executor.submit(array_head, value).result(timeout=RESULT_TIMEOUT)
    assert described == ("ndarray", 200 * MB, array_head(random_array(8000))[2])
    assert peak[0] < LIMIT, f"the worker's process reached {peak[0] / MB:.0f} MB"
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def compressible_array(nbytes):
    """Small whole numbers as floats: lz4 takes them to about a third (every page written)."""
    import numpy
    return numpy.random.default_rng(3).integers(0, 50, nbytes // 8, dtype=numpy.uint8
                                                ).astype(numpy.float64)


def test_a_compressible_array_spills_and_comes_back_without_a_second_copy(make_cluster):
    """200 MB of compressible floats on a 300 MB worker: compressed in one go, the compressed
    copy (74 MB) stood beside the array while it was written, and lz4's one-block
    decompression gave a buffer of the whole array for the value's own to be copied from
    (the process at 470-500 MB as it came back)."""
    cluster = make_cluster(n_workers=0)
    worker = small_worker(cluster)
    executor = cluster.executor()
    with peak_rss(worker.worker_pid()) as peak:
        value = executor.submit(compressible_array, 200 * MB)
        wait([value], timeout=RESULT_TIMEOUT)  # (stored and spilled before a task reads it)
        described = executor.submit(array_head, value).result(timeout=RESULT_TIMEOUT)
    assert described == ("ndarray", 200 * MB, array_head(compressible_array(8000))[2])
    assert peak[0] < LIMIT, f"the worker's process reached {peak[0] / MB:.0f} MB"
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def freed_slowly(nbytes, seconds):
    """An array whose memory goes back ``seconds`` after it is dropped (a finalizer that
    takes that long, as closing a file over the network may)."""
    import time
    import weakref

    import numpy
    values = numpy.ones(nbytes // 8)
    weakref.finalize(values, time.sleep, seconds)
    return values


def test_a_value_spilled_and_still_being_dropped_costs_no_restart(make_cluster):
    """Past *terminate* (300 of 600 MB here) only by a value already written to disk, whose
    memory is on its way back: the worker waits for it to go, as long as it stays under the
    limit itself. It was restarted once past terminate for half a second, its result lost."""
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(
        cluster.address, "--memory-limit", str(600 * MB), "--memory-target-fraction", "0.2",
        "--memory-spill-fraction", "0.3", "--memory-pause-fraction", "0.4",
        "--memory-terminate-fraction", "0.5", nanny=True, name="small")
    cluster.workers.append(worker)
    executor = cluster.executor()
    with peak_rss(worker.worker_pid()) as peak:
        value = executor.submit(freed_slowly, 280 * MB, 2.0)
        wait([value], timeout=RESULT_TIMEOUT)
        described = executor.submit(array_head, value).result(timeout=RESULT_TIMEOUT)
    assert described == ("ndarray", 280 * MB, 1000.0)
    assert peak[0] > 300 * MB  # (past terminate, as the test means)
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def test_bytes_arriving_from_a_peer_or_a_client_are_held_once(make_cluster):
    """200 MB of bytes made on another worker and read by a task on a 300 MB one, then
    200 MB more scattered to it: a large frame arrives in a buffer of its own, and a bytes
    object cannot be read into, so the value was a copy of the frame with the frame still
    beside it (the process past 430 MB); now the frame goes as the value is filled."""
    cluster = make_cluster(n_workers=0)
    maker = cluster.processes.start_worker(cluster.address, name="maker")
    cluster.workers.append(maker)
    worker = small_worker(cluster)
    executor = cluster.executor()
    value = executor.submit(random_bytes, 200 * MB, workers=["maker"])
    wait([value], timeout=RESULT_TIMEOUT)
    with peak_rss(worker.worker_pid()) as peak:
        described = executor.submit(head, value, workers=["small"]).result(
            timeout=RESULT_TIMEOUT)
    assert described[:2] == ("bytes", 200 * MB)
    assert peak[0] < LIMIT, f"fetched from a peer, the worker reached {peak[0] / MB:.0f} MB"
    del value
    data = random_bytes(200 * MB)
    with peak_rss(worker.worker_pid()) as peak:
        [scattered] = executor.scatter([data], workers=["small"])
        wait([scattered], timeout=RESULT_TIMEOUT)
    assert executor.submit(head, scattered).result(timeout=RESULT_TIMEOUT) == head(data)
    assert peak[0] < LIMIT, f"scattered to it, the worker reached {peak[0] / MB:.0f} MB"
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def digest(value):
    import hashlib
    return type(value).__name__, hashlib.sha256(value).hexdigest()


@pytest.mark.filterwarnings("ignore:the arguments of")
def test_a_bytes_argument_of_two_thirds_of_the_limit_is_held_once(make_cluster):
    """200 MB of bytes as a task's argument (not scattered) on a 300 MB worker: its frame
    arrives into the value itself, through the center, which keeps it for lineage. It was a
    frame and then a copy of it on the worker (the process past 400 MB), and the copy a
    fifth of the time a 1 GiB argument took; the task reads exactly what was sent."""
    cluster = make_cluster(n_workers=0)
    worker = small_worker(cluster)
    executor = cluster.executor()
    data = random_bytes(200 * MB)
    with peak_rss(worker.worker_pid()) as peak:
        got = executor.submit(digest, data, pure=False).result(timeout=RESULT_TIMEOUT)
    assert got == digest(data)
    assert peak[0] < LIMIT, f"the worker's process reached {peak[0] / MB:.0f} MB"
    assert len(worker.matching("Registered with center at")) == 1  # never restarted
    # and back: a large result gathered by the client is the value it was sent as
    echoed = executor.submit(bytes, data, pure=False).result(timeout=RESULT_TIMEOUT)
    assert type(echoed) is bytes and echoed == data
