"""``--memory-limit`` as an operator types it: sizes, shares of the machine, ``auto``; values
that cannot work are refused up front with a usage error, not obeyed by restarting for ever."""
from __future__ import annotations

import os
import subprocess

import pytest
from dist_worker.memory import system_memory

from .conftest import command, hermetic_environment

MB = 10**6


def dworker(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """A dworker (with its nanny) that must exit by itself: the center it names is not
    there, so it could only wait."""
    return subprocess.run([*command("dworker", "dist_worker.cli"), "127.0.0.1:9", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=hermetic_environment({"COLUMNS": "200"}))


@pytest.mark.parametrize("value, reason", [
    ("100", "below the minimum"),  # used to restart once a second for ever
    ("-1", "negative"),
    ("abc", "cannot read 'abc' as a size"),  # used to print a traceback
])
def test_a_memory_limit_that_cannot_work_is_a_usage_error(value, reason):
    done = dworker("--memory-limit", value)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert "Usage: dworker" in done.stderr and "--memory-limit" in done.stderr
    assert reason in " ".join(done.stderr.split()), done.stderr


def test_a_bad_threshold_is_a_usage_error():
    done = dworker("--memory-limit", "1GB", "--memory-spill-fraction", "lots")
    assert done.returncode == 2 and "--memory-spill-fraction" in done.stderr, done


def test_a_bad_compression_choice_is_a_usage_error():
    done = dworker("--memory-limit", "1GB", "--spill-compression", "gzip")
    assert done.returncode == 2 and "--spill-compression" in done.stderr, done
    assert "lz4, zstd, none" in " ".join(done.stderr.split()), done.stderr
    done = subprocess.run([*command("dworker", "dist_worker.cli"), "127.0.0.1:9"],
                          capture_output=True, text=True, timeout=30,
                          env=hermetic_environment({"COLUMNS": "200",
                                                    "DIST_COMPRESSION": "brotli"}))
    assert done.returncode == 2 and "DIST_COMPRESSION" in done.stderr, done
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value, share", [("0.5", 0.5), ("auto", None), (None, None),
                                          ("0", 0.0)], ids=["0.5", "auto", "default", "none"])
def test_fractions_and_auto_are_shares_of_the_machine(make_cluster, value, share):
    """Without the flag a worker takes auto's share, as dask's workers do: held results past
    it go to disk instead of the system killing the worker."""
    cluster = make_cluster(n_workers=0)
    flag = () if value is None else ("--memory-limit", value)
    worker = cluster.processes.start_worker(cluster.address, *flag, nthreads=1)
    cluster.workers.append(worker)
    executor = cluster.executor()
    cluster.wait_for_workers(executor, 1)
    limit = cluster.worker_table(executor)[worker.address]["memory_limit"]
    machine = system_memory()  # physical memory, or less under a cgroup limit
    if share is None:  # auto: the machine shared out by threads, one of os.cpu_count()
        share = min(1.0, 1 / (os.cpu_count() or 1))
    assert limit == int(share * machine)
