"""Subgraphs dask fuses, and the chains the client fuses, run as nested tasks where each node
is read once: the same values, without ordering the subgraph on every run."""
import operator

import pytest

pytest.importorskip("dask")
from dask._task_spec import Alias, DataNode, Task, TaskRef, _execute_subgraph

from dist_client import dask_nodes


def subgraphs(graph):
    return [key for key, node in graph.items() if getattr(node, "func", None)
            is _execute_subgraph]


def test_a_chain_the_client_fuses_is_one_nested_task():
    graph = {"a": Task("a", operator.add, TaskRef("x"), 1),
             "b": Task("b", operator.mul, TaskRef("a"), 2),
             "c": Task("c", operator.neg, TaskRef("b")),
             "d": Alias("d", "c"),
             "x": DataNode("x", 3)}
    fused = dask_nodes.fuse_chains(graph, ["d"])
    assert set(fused) == {"d"} and subgraphs(fused) == []
    assert fused["d"].key == "d" and not fused["d"].dependencies
    assert fused["d"]({}) == -8


def test_a_blockwise_subgraph_dask_fused_is_nested_with_its_inputs_named_as_in_the_graph():
    inner = {"sum": Task("sum", sum, TaskRef("add")),
             "add": Task("add", operator.add, TaskRef("_0"), TaskRef("t")),
             "t": Task("t", list, TaskRef("_1"))}
    node = Task("out", _execute_subgraph, inner, "sum", ("_0", "_1"), TaskRef("p"),
                TaskRef("q"))
    nested = dask_nodes.unfused(node)
    assert nested is not node and nested.func is sum
    assert nested.key == "out" and nested.dependencies == {"p", "q"}
    values = {"p": [1, 2], "q": (3, 4)}
    assert nested(values) == node(values) == 10


def test_a_subgraph_reading_a_node_twice_stays_as_dask_made_it():
    inner = {"out": Task("out", operator.add, TaskRef("r"), TaskRef("s")),
             "r": Task("r", operator.neg, TaskRef("shared")),
             "s": Task("s", abs, TaskRef("shared")),
             "shared": Task("shared", operator.mul, TaskRef("_0"), 2)}
    node = Task("out", _execute_subgraph, inner, "out", ("_0",), TaskRef("p"))
    assert dask_nodes.unfused(node) is node  # nested, "shared" would run twice
    assert node({"p": 5}) == 0


def test_the_whole_graph_gives_what_dask_gives():
    da = pytest.importorskip("dask.array")
    np = pytest.importorskip("numpy")
    from dask.local import get_sync

    x = da.random.RandomState(1).random((40, 40), chunks=10)
    y = (x + x.T).sum(axis=0)
    import dask

    (y,) = dask.optimize(y)  # (dask fuses the blockwise operations here)
    graph = dask_nodes.read_graph(y)[0]
    keys = list(y.__dask_keys__())
    fused = dask_nodes.fuse_chains(graph, keys)
    # Each node is nested as it is packed, after the graph is ordered and its first part sent.
    packed = {key: dask_nodes.unfused(node) for key, node in fused.items()}
    assert len(subgraphs(packed)) < len(subgraphs(dict(y.__dask_graph__()))) / 2
    expected = y.compute(scheduler="sync")
    np.testing.assert_allclose(np.concatenate(get_sync(packed, keys)), expected)
    np.testing.assert_allclose(np.concatenate(get_sync(fused, keys)), expected)
