"""dask's ``print`` and ``warn`` from tasks: what a task prints or warns with them shows on the
user's client (as well as in its worker's output), as dask.distributed's do."""
from __future__ import annotations

import sys
import warnings

import dist_client
import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(120)


class CustomWarning(UserWarning):
    pass


def print_in_task(x):
    dist_client.print("task says", x, sep="-", end="!\n")
    dist_client.print("trouble", x, file=sys.stderr)
    return x


def warn_in_task(x):
    dist_client.warn(f"careful with {x}", RuntimeWarning)
    dist_client.warn(CustomWarning(f"custom {x}"))
    return x


class Printed:
    """What the client's handler thread printed so far, read through pytest's capture."""

    def __init__(self, capsys):
        self.capsys, self.out, self.err = capsys, "", ""

    def has(self, outs: list[str], errs: list[str]) -> bool:
        captured = self.capsys.readouterr()
        self.out += captured.out
        self.err += captured.err
        return all(out in self.out for out in outs) and all(err in self.err for err in errs)


def test_a_tasks_print_shows_on_the_client(module_cluster, capsys, wait_until):
    with Executor(module_cluster.address) as e:
        assert e.gather(e.map(print_in_task, [7, 8])) == [7, 8]
        printed = Printed(capsys)
        wait_until(lambda: printed.has(["task says-7!\n", "task says-8!\n"],
                                       ["trouble 7\n", "trouble 8\n"]), what="the prints")
        assert "trouble" not in printed.out  # file=sys.stderr in the task: stderr here
        assert [msg["args"] for _, msg in e.get_events("print")][:1] in (
            [["task says", "7"]], [["task says", "8"]])


def test_a_tasks_warning_is_raised_on_the_client_with_its_category(module_cluster,
                                                                     wait_until):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Executor(module_cluster.address) as e:
            assert e.submit(warn_in_task, 3).result() == 3
            wait_until(lambda: len(caught) >= 2, what="the warnings")
    by_text = {str(w.message): w.category for w in caught}
    assert by_text["careful with 3"] is RuntimeWarning
    # (a category defined in the test module travels by name and imports here)
    assert by_text["custom 3"].__name__ == "CustomWarning"


def test_outside_a_task_they_are_the_builtins(capsys):
    dist_client.print("plain", 1, sep=":")
    assert capsys.readouterr().out == "plain:1\n"
    with pytest.warns(UserWarning, match="local"):
        dist_client.warn("local")
    assert "print" not in dist_client.__all__  # a star import keeps the builtin print
