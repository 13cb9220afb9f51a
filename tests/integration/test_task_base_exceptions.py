"""A task that calls ``sys.exit()`` or raises any other BaseException errs; the worker goes on.

Reproduces the original hang: on a ``--nthreads 1`` worker, ``sys.exit("usage")`` in a task left
its future pending forever, the worker "running" with one task executing, and its only thread
gone, so no later task ever ran.
"""
from __future__ import annotations

import sys

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


class Abandoned(BaseException):
    """A BaseException of the user's own, known to the worker only through the function."""


def usage(x):
    sys.exit("usage: task X")


def interrupted(x):
    raise KeyboardInterrupt(f"interrupted at {x}")


def generator_closed(x):
    raise GeneratorExit("generator closed")


def abandoned(x):
    raise Abandoned(f"abandoned {x}")


def inc(x):
    return x + 1


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_sys_exit_in_a_task_errs_it_and_the_only_thread_runs_the_next(cluster, executor):
    future = executor.submit(usage, 1)
    with pytest.raises(SystemExit) as caught:
        future.result(timeout=RESULT_TIMEOUT)
    assert str(caught.value) == "usage: task X"
    assert future.status == "error"
    assert "usage: task X" in future.traceback_text(timeout=RESULT_TIMEOUT)
    # the worker's single thread is still there
    assert executor.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2
    assert cluster.workers[0].popen.poll() is None


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_every_kind_of_base_exception_errs_its_task_with_type_and_message(cluster, executor):
    cases = [(usage, SystemExit, "usage: task X"),
             (interrupted, KeyboardInterrupt, "interrupted at 2"),
             (generator_closed, GeneratorExit, "generator closed"),
             (abandoned, Abandoned, "abandoned 2")]
    futures = [executor.submit(function, 2) for function, _, _ in cases]
    after = executor.submit(inc, 41)  # queued behind all four on the one thread
    for future, (function, exception_type, message) in zip(futures, cases):
        error = future.exception(timeout=RESULT_TIMEOUT)
        assert type(error) is exception_type, (function.__name__, error)
        assert str(error) == message
        assert future.status == "error"
    assert after.result(timeout=RESULT_TIMEOUT) == 42
    # Nothing is left executing: the center's row for the worker (from its heartbeats)
    # comes back to idle.
    wait_until(lambda: all(row["metrics"].get("executing") == 0
                           for row in cluster.worker_table(executor).values()),
               timeout=10, what="the worker to report nothing executing")
    assert executor.gather(executor.map(inc, range(10)), timeout=RESULT_TIMEOUT) == list(
        range(1, 11))
