"""What ``dask.annotate`` gives a graph's tasks, read as their options, and the priority a
graph's task travels with."""
import pytest

dask = pytest.importorskip("dask")
from dask.base import collections_to_expr  # noqa: E402

from dist_client import dask_graphs, dask_nodes  # noqa: E402


def _graph_and_expr(collection):
    expr = collections_to_expr([collection], True).optimize()
    return dask_nodes.read_graph(expr)[0], expr


def test_the_task_options_of_an_annotation_are_read_by_key():
    with dask.annotate(workers="w1", retries=2, resources={"GPU": 1}, colour="blue"):
        inner = dask.delayed(abs, pure=False)(-1)
    outer = dask.delayed(sum, pure=False)([inner, 1])
    graph, expr = _graph_and_expr(outer)
    annotated = dask_graphs.annotated_options(expr, graph)
    # (a name of the user's own, as "colour", is dask's alone)
    assert annotated == {inner.key: {"workers": ["w1"], "retries": 2, "resources": {"GPU": 1}}}
    options_of = dask_graphs.restricted(graph, retries=1, priority=3, annotated=annotated)
    assert options_of(inner.key) == {"workers": ["w1"], "priority": 3, "retries": 2,
                                     "allow_other_workers": False, "resources": {"GPU": 1}}
    assert options_of(outer.key)["workers"] is None and options_of(outer.key)["retries"] == 1


def test_a_plain_graph_has_no_annotations():
    assert dask_graphs.annotated_options({"x": (abs, -1)}, {"x": None}) == {}


def test_a_tasks_own_priority_comes_before_dasks_order():
    tasks = 100
    assert [dask_graphs.ranked(0, rank, tasks) for rank in (0, 1, 99)] == [0, -1, -99]
    assert dask_graphs.ranked(1, tasks - 1, tasks) > dask_graphs.ranked(0, 0, tasks)
    assert dask_graphs.ranked(-1, 0, tasks) < dask_graphs.ranked(0, tasks - 1, tasks)
    assert dask_graphs.ranked(2**70, 0, tasks) == dask_graphs.PRIORITY_LIMIT


def test_a_blocks_options_go_under_those_a_call_gives():
    from dist_client.dask_annotate import call_options, enclosing, under_given

    assert enclosing() == {}
    with dask.annotate(workers=["w1"], priority=lambda key: 1, colour="blue", retries=2):
        block = enclosing()
        assert call_options(None, 0, 5, False, None) == {
            "workers": ["w1"], "priority": 0, "retries": 5, "allow_other_workers": False,
            "resources": None}
    assert set(block) == {"workers", "priority", "retries"}
    # (a function of a task's key is dask's to apply where it names the keys)
    assert under_given({"workers": None, "priority": 0}, block) == {
        "workers": ["w1"], "priority": 0, "retries": 2}
