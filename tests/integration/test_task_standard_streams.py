"""A task that closes its worker's standard output and error (``os.close(1)``, a library that
daemonizes): the worker's next connections do not take those numbers, so what is printed
later does not go into them, and transfers between the workers go on."""
from __future__ import annotations

import os
import socket

import pytest

pytestmark = pytest.mark.timeout(120)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 1}


def standard_output():
    status = os.fstat(1)
    return status.st_dev, status.st_ino


def close_standard_streams():
    os.close(1)
    os.close(2)
    return "closed"


def open_and_print():
    opened = socket.socket()
    try:
        print("printed after the close")
        return opened.fileno(), standard_output()
    finally:
        opened.close()


def test_a_task_closing_the_standard_streams_leaves_them_to_the_worker(module_cluster):
    with module_cluster.executor() as e:
        first, second = sorted(e.scheduler_info()["workers"])
        before = e.submit(standard_output, workers=[first], pure=False).result(60)
        assert e.submit(close_standard_streams, workers=[first], pure=False).result(60)
        data = e.submit(bytes, 5_000_000, workers=[second], pure=False)
        # the first worker fetches from the second: a new connection, opened after the close
        total = e.submit(len, data, workers=[first], pure=False)
        assert total.result(60) == 5_000_000
        fileno, after = e.submit(open_and_print, workers=[first], pure=False).result(60)
        assert fileno > 2
        assert after == before


def leave_closed_streams():
    import sys

    closed = open(os.devnull, "w")
    closed.close()
    sys.stdout = sys.stderr = closed
    return "left"


def print_to_both():
    import sys

    print("a later task prints")
    print("and warns", file=sys.stderr)
    return "printed"


def test_a_task_leaving_closed_files_as_sys_stdout_and_stderr_does_not_fail_later_prints(
        module_cluster):
    # Before, every later task that printed on that worker failed with "ValueError: I/O
    # operation on closed file", for the worker's life.
    with module_cluster.executor() as e:
        first, _ = sorted(e.scheduler_info()["workers"])
        assert e.submit(leave_closed_streams, workers=[first], pure=False).result(60) == "left"
        printed = [e.submit(print_to_both, workers=[first], pure=False) for _ in range(3)]
        assert e.gather(printed, timeout=60) == ["printed"] * 3
