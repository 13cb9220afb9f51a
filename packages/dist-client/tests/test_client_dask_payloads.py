"""How the nodes of a dask graph are pickled for the workers."""
import operator
import pickle

import cloudpickle
import pytest

pytest.importorskip("dask")
from dask._task_spec import Task, TaskRef

from dist_client import dask_graphs


class FakeSubmitter:
    """Stands in for the client's own (cloudpickle) path, its submitter's, and records its use."""

    def __init__(self):
        self.used = []

    def function_payload(self, node):
        self.used.append(node)
        return dask_graphs.Payload("pickle", [cloudpickle.dumps(node, protocol=5)])


def run(payload):
    return pickle.loads(payload.frames[0])({"a": 2})


def test_importable_functions_use_the_standard_pickler():
    submitter = FakeSubmitter()
    node = Task("x", operator.add, TaskRef("a"), 3)
    payload = dask_graphs._node_payload(submitter, node)
    assert submitter.used == [] and payload.serializer == "pickle"
    assert run(payload) == 5


def test_lambdas_and_main_functions_alone_go_through_cloudpickle(monkeypatch):
    submitter = FakeSubmitter()
    times_ten = lambda a: a * 10
    lam = Task("x", times_ten, TaskRef("a"))
    assert run(dask_graphs._node_payload(submitter, lam)) == 20

    def triple(a):
        return a * 3
    triple.__module__ = "__main__"
    triple.__qualname__ = "triple"
    monkeypatch.setattr("__main__.triple", triple, raising=False)
    main = Task("y", triple, TaskRef("a"))
    assert run(dask_graphs._node_payload(submitter, main)) == 6
    # The functions themselves, not the nodes around them: the submitter pickles each once.
    assert submitter.used == [times_ten, triple]


def test_a_lambda_held_by_many_nodes_is_pickled_by_value_inside_each():
    submitter = FakeSubmitter()
    scale = lambda a, by: a * by
    nodes = [Task(f"x{i}", scale, TaskRef("a"), i) for i in range(3)]

    assert [run(dask_graphs._node_payload(submitter, node)) for node in nodes] == [0, 2, 4]
    assert submitter.used == [scale] * 3


def test_a_class_defined_in_a_function_travels_by_value_with_its_node():
    class Offset:
        def __init__(self, by):
            self.by = by

    def shifted(a, offset):
        return a + offset.by

    submitter = FakeSubmitter()
    node = Task("x", shifted, TaskRef("a"), Offset(5))

    assert run(dask_graphs._node_payload(submitter, node)) == 7
    assert set(submitter.used) == {shifted, Offset}


def test_modules_registered_by_value_go_through_cloudpickle(monkeypatch):
    monkeypatch.setattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", {"somewhere"})
    submitter = FakeSubmitter()
    node = Task("x", operator.add, TaskRef("a"), 3)
    assert run(dask_graphs._node_payload(submitter, node)) == 5
    assert submitter.used == [node]


def test_an_arrays_data_travels_out_of_band_beside_the_nodes_pickle():
    # In band, a GiB literal (da.from_array's one chunk) was copied into the pickle on the
    # client and out of it on the worker, holding the interpreter's lock for seconds.
    np = pytest.importorskip("numpy")
    literal = np.arange(2**17, dtype=np.float64)
    payload = dask_graphs._node_payload(FakeSubmitter(), literal)

    assert len(payload.frames) == 2 and len(payload.frames[0]) < 1000
    assert payload.frames[1].nbytes == literal.nbytes
    back = pickle.loads(payload.frames[0], buffers=payload.frames[1:])
    assert (back == literal).all()


def test_a_large_bytes_literal_travels_out_of_band_beside_its_nodes_pickle():
    # A pickle writes bytes in band: a GiB literal was copied into its node's pickle on the
    # client and out of it again on the worker.
    from dask._task_spec import convert_legacy_graph

    from dist_client.dask_nodes import large_bytes_apart

    literal = b"x" * (2 * 2**20)
    graph = convert_legacy_graph({"value": literal, "small": b"y"})
    payload = dask_graphs._node_payload(FakeSubmitter(), large_bytes_apart(graph["value"]))

    assert len(payload.frames) == 2 and len(payload.frames[0]) < 1000
    assert payload.frames[1].obj is literal  # (a view of the value itself)
    node = pickle.loads(payload.frames[0], buffers=payload.frames[1:])
    assert node.key == "value" and not node.dependencies and node({}) == literal
    assert large_bytes_apart(graph["small"]) is graph["small"]


@pytest.mark.parametrize("function", [len, lambda value: len(value)], ids=["by-name", "lambda"])
def test_a_large_bytes_literal_inside_a_node_travels_out_of_band(function):
    # A chain fused into one node holds the literal inside it, deeper than a node of its
    # own; with the user's function (a lambda, ``__main__``) the node is pickled by value.
    from dask._task_spec import DataNode

    literal = b"x" * (2 * 2**20)
    node = Task("size", function, DataNode("value", literal))
    payload = dask_graphs._node_payload(FakeSubmitter(), node)

    assert len(payload.frames) == 2 and len(payload.frames[0]) < 10_000
    assert payload.frames[1].obj is literal
    assert pickle.loads(payload.frames[0], buffers=payload.frames[1:])({}) == len(literal)
