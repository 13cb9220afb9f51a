"""Futures inside arguments become KeyRefs, at any depth; gather rebuilds the structure."""
from collections import namedtuple

from dist_client.packing import collect_futures, pack, rebuild, without_missing
from dist_protocol.serialize import KeyRef


def test_pack_replaces_futures_everywhere(make_future):
    a, b, c, d = (make_future(k) for k in "abcd")
    deps = {}
    packed = pack([a, (b, 1), {"k": c}, {d}], deps)
    assert packed == [KeyRef("a"), (KeyRef("b"), 1), {"k": KeyRef("c")}, {KeyRef("d")}]
    assert sorted(deps) == ["a", "b", "c", "d"]


def test_pack_leaves_plain_values_alone():
    deps = {}
    value = {"x": [1, 2, (3, "s")]}
    assert pack(value, deps) == value
    assert deps == {}


def test_collect_and_rebuild_nested(make_future):
    a, b = make_future("a"), make_future("b")
    structure = {"first": [a, (b, 5)], "n": 3}
    found = []
    collect_futures(structure, found)
    assert [f.key for f in found] == ["a", "b"]
    assert rebuild(structure, {"a": 10, "b": 20}) == {"first": [10, (20, 5)], "n": 3}


Point = namedtuple("Point", "x y")


def test_futures_inside_namedtuples_are_read_as_dask_reads_them(make_future):
    a, b = make_future("a"), make_future("b")
    deps = {}
    assert pack([Point(a, 1)], deps) == [Point(KeyRef("a"), 1)] and list(deps) == ["a"]
    assert type(pack(Point(1, 2), {})) is Point
    found = []
    collect_futures({"p": Point(a, [b])}, found)
    assert [f.key for f in found] == ["a", "b"]
    assert rebuild((Point(a, [b]),), {"a": 1, "b": 2}) == (Point(1, [2]),)
    assert without_missing(Point(a, b), {"b": 2}) == Point(None, 2)


def test_future_repr_is_exact(make_future):
    f = make_future("inc-79963f7e613e5e55838d2232920baed2")
    assert repr(f) == "<Future: status: pending, key: inc-79963f7e613e5e55838d2232920baed2>"
    f.keystate.finish(8, "int", ["127.0.0.1:1"])
    assert repr(f) == "<Future: status: finished, key: inc-79963f7e613e5e55838d2232920baed2>"
    assert f.done() and f.status == "finished"


def test_plain_arguments_pickle_as_serialize_pickles_them(make_future):
    """A call of numbers, strings and bytes takes the short way to its pickle; what it
    makes is what ``serialize`` makes, and anything else still goes the long way."""
    from dist_client.tasks import TaskBuilder
    from dist_protocol.serialize import deserialize, serialize

    function = serialize(len)
    for args in [(1,), (1, 2.5, "__main__", b"x", None, True, 1j)]:
        task = TaskBuilder.build("k", function, args, {}, {})
        assert task.args.serializer == "pickle" and task.deps == []
        assert task.args.frames == serialize((args, {})).frames
        assert deserialize(task.args) == (args, {})
    future = make_future("a")
    task = TaskBuilder.build("k", function, (1, future), {}, {})
    assert task.deps == ["a"] and deserialize(task.args) == ((1, KeyRef("a")), {})
    task = TaskBuilder.build("k", function, (1,), {"x": 2}, {})
    assert deserialize(task.args) == ((1,), {"x": 2})


def test_a_large_bytes_argument_travels_as_a_frame_of_its_own(make_future):
    """Pickled in band with the call, a 1 GiB argument was copied into the pickle on the
    client and out of it again on the worker: it is now the payload's second frame, itself,
    whichever way the call is pickled."""
    from dist_client.tasks import TaskBuilder
    from dist_protocol.serialize import deserialize, serialize

    function = serialize(len)
    large = b"x" * (2 * 2**20)
    future = make_future("a")
    for args, kwargs, expected in [
            ((1, large), {}, ((1, large), {})),
            ((future, large), {}, ((KeyRef("a"), large), {})),
            ((1,), {"data": large, "n": 2}, ((1,), {"data": large, "n": 2}))]:
        task = TaskBuilder.build("k", function, args, kwargs, {})
        assert len(task.args.frames) == 2 and task.args.frames[1].obj is large  # (a view)
        assert len(task.args.frames[0]) < 200
        assert deserialize(task.args) == expected
