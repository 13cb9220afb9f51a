"""``progress`` as dask's is called: futures as several arguments, ``notebook``, ``multi`` and
``complete``; in a notebook it returns at once and its bars follow the futures.

In a Jupyter kernel ``progress(futures)`` used to draw its widget and then block the kernel
until the last task ended, and ``progress(x, y)`` took ``y`` for the redraw interval. The
notebook's modules are stood in for here (``ipywidgets``, ``IPython.display``).
"""
from __future__ import annotations

import io
import sys
import threading
import types

import pytest
from dist_client import Event, progress

from .conftest import wait_until

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def fail(x):
    raise ValueError(x)


def wait_for_event(name):
    Event(name).wait()
    return name


class FakeWidget:
    def __init__(self, children=(), **attributes):
        self.children = list(children)
        self.bar_style = ""
        self.description = ""
        self.__dict__.update(attributes)


@pytest.fixture
def notebook(monkeypatch):
    """What ``progress`` displays, with the notebook's modules stood in for."""
    shown: list[FakeWidget] = []
    widgets = types.ModuleType("ipywidgets")
    widgets.IntProgress = FakeWidget
    widgets.VBox = FakeWidget
    display = types.ModuleType("IPython.display")
    display.display = shown.append
    ipython = types.ModuleType("IPython")
    ipython.display = display
    monkeypatch.setitem(sys.modules, "ipywidgets", widgets)
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return shown


def test_futures_given_as_several_arguments_are_all_counted(executor):
    first, second = executor.submit(inc, 1), executor.submit(inc, 2)
    others = executor.map(inc, range(3))
    out = io.StringIO()
    progress(first, second, others, file=out, interval=0.01, notebook=False)
    assert out.getvalue().rstrip().split("\r")[-1].split("|")[0].endswith("] 5/5 ")
    assert first.done() and second.done() and all(f.done() for f in others)


@pytest.mark.cluster(n_workers=1, nthreads=2)
def test_complete_false_counts_only_the_futures_not_done(executor, notebook):
    done = executor.submit(inc, 1)
    done.result(timeout=RESULT_TIMEOUT)
    name = f"progress-{threading.get_ident()}-complete"
    waiting = executor.submit(wait_for_event, name)
    progress([done, waiting], complete=False, multi=False, notebook=True)
    [bar] = notebook
    assert bar.description == "0/1"
    Event(name, executor=executor).set()
    wait_until(lambda: bar.value == 1, what="the bar")
    assert bar.description == "1/1" and bar.bar_style == "success"


@pytest.mark.cluster(n_workers=1, nthreads=4)  # (free threads beside the waiting task)
def test_in_a_notebook_it_returns_at_once_and_its_bars_follow_the_futures(executor,
                                                                          notebook):
    name = f"progress-{threading.get_ident()}-notebook"
    waiting = executor.submit(wait_for_event, name)
    ones = executor.map(inc, range(3))
    failing = executor.submit(fail, 1)
    assert progress(waiting, ones, failing, notebook=True) is None
    [box] = notebook
    bars = {bar.description.split(":")[0]: bar for bar in box.children}
    assert set(bars) == {"wait_for_event", "inc", "fail"}
    assert not waiting.done()  # it returned while a task still waits
    wait_until(lambda: bars["inc"].value == 3 and bars["fail"].value == 1, what="the bars")
    assert bars["inc"].description == "inc: 3/3" and bars["inc"].bar_style == "success"
    assert bars["fail"].bar_style == "danger"
    assert bars["wait_for_event"].description == "wait_for_event: 0/1"
    Event(name, executor=executor).set()
    assert waiting.result(timeout=RESULT_TIMEOUT) == name
    wait_until(lambda: bars["wait_for_event"].value == 1, what="the last bar")
    assert bars["wait_for_event"].description == "wait_for_event: 1/1"


def test_one_bar_for_all_without_multi(executor, notebook):
    futures = executor.map(inc, range(4))
    progress(futures, executor.submit(fail, 2), multi=False, notebook=True)
    [bar] = notebook
    wait_until(lambda: bar.value == 5, what="the bar")
    assert bar.description == "5/5" and bar.bar_style == "danger"
