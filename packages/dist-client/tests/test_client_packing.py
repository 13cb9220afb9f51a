"""Futures inside arguments become KeyRefs, at any depth; gather rebuilds the structure."""
from dist_client.packing import collect_futures, pack, rebuild
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


def test_future_repr_is_exact(make_future):
    f = make_future("inc-79963f7e613e5e55838d2232920baed2")
    assert repr(f) == "<Future: status: pending, key: inc-79963f7e613e5e55838d2232920baed2>"
    f.keystate.finish(8, "int", ["127.0.0.1:1"])
    assert repr(f) == "<Future: status: finished, key: inc-79963f7e613e5e55838d2232920baed2>"
    assert f.done() and f.status == "finished"
