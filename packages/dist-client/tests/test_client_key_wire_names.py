"""Keys of every dask type and the strings that name them on the wire: two different keys
never share a name, equal keys share one, and the name reads back as the user's key."""
import numpy as np
import pytest
from dist_client.held_futures import HeldFutures
from dist_client.keys import funcname, given_key, map_keys
from dist_protocol.key_names import ESCAPE, user_key, wire_key

KEYS = ["inc-79963f7e613e5e55838d2232920baed2", "", "x", "bar", "sum-1", "str-x",
        17, -3, 10**30, 1.5, -0.25, 1.5e-300, b"a", b"it's \"q\"", b"",
        ("x", 1), ("x",), (), ("x-abc", 0, 1), (("a", 1), b"z", 2.5, "str:y"), ("f(x)", 1),
        # strings that read as another key's name, and strings carrying the escape
        "17", "-3", "1.5", "1e300", "('x', 1)", "('x',)", "()", "b'a'", 'b"a"', "(unclosed",
        "2026-12-07", "str:", "str:x", "str:17", "str:str:17", ESCAPE + "('x', 1)"]


def same(a, b):
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_a_key_reads_back_as_itself_with_its_type(key):
    name = wire_key(key)
    assert type(name) is str
    assert same(user_key(name), key)


def test_different_keys_never_share_a_name():
    names = [wire_key(key) for key in KEYS]
    assert len(set(names)) == len(KEYS)


@pytest.mark.parametrize("number, text", [(17, "17"), (("x", 1), "('x', 1)"), (b"a", "b'a'"),
                                          (1.5, "1.5")])
def test_a_string_spelling_another_key_is_escaped_and_the_key_is_its_literal(number, text):
    assert wire_key(number) == text  # as before: dask's task groups and the dashboard read it
    assert wire_key(text) == ESCAPE + text


def test_strings_that_start_with_the_escape_get_it_once_more():
    assert wire_key("str:x") == "str:str:x"
    assert user_key("str:str:x") == "str:x"
    assert user_key(wire_key("str:str:x")) == "str:str:x"


def test_plain_string_keys_are_their_own_names():
    for key in ("inc-79963f7e613e5e55838d2232920baed2", "bar", "b", "s", "str", "x.y", "+1",
                ".5", " 17", "inf", "None"):
        assert wire_key(key) is key
        assert user_key(key) is key


def test_numpy_parts_name_the_same_key_as_python_s_own():
    assert wire_key(("x", np.int64(0), np.int32(1))) == wire_key(("x", 0, 1)) == "('x', 0, 1)"
    assert wire_key(np.int64(3)) == "3"
    assert wire_key(np.float64(2.5)) == "2.5"
    assert wire_key(("x", np.str_("y"))) == "('x', 'y')"
    assert same(user_key(wire_key(("x", np.int64(0)))), ("x", 0))


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), None, object()],
                         ids=repr)
def test_what_no_literal_reads_back_is_refused(bad):
    with pytest.raises(ValueError, match="cannot name a key"):
        wire_key(bad)


def test_names_only_shaped_like_literals_read_as_their_text():
    for name in ("1abc", "(1, [2])", "('x')", "-x", "(" * 1000, "b'unclosed"):
        assert user_key(name) == name


def test_given_keys_are_checked_then_named():
    assert given_key(17) == "17" and given_key("17") == "str:17"
    with pytest.raises(TypeError, match="key"):
        given_key(("x", None))


def test_a_map_prefix_that_reads_as_a_literal_is_escaped_once_for_every_key():
    keys = map_keys(lambda x: x, [(1,), (2,)], {}, "17", pure=True)
    assert all(k.startswith("str:17-") for k in keys)
    assert [user_key(k) for k in keys] == [k[len(ESCAPE):] for k in keys]
    impure = map_keys(lambda x: x, [(1,)], {}, "(a", pure=False)
    assert impure[0].startswith("str:(a-")
    assert map_keys(lambda x: x, [(1,)], {}, "inc", pure=True)[0].startswith("inc-")


def test_a_function_name_starting_with_a_digit_cannot_read_as_a_number():
    def f():
        pass
    f.__name__ = "1e5"
    assert funcname(f) == "_1e5"


def test_a_future_gives_back_the_user_s_key_and_keeps_the_wire_name(make_future):
    futures = {key: make_future(wire_key(key)) for key in (17, "17", ("x", 1), b"a")}
    for key, future in futures.items():
        assert same(future.key, key)
        assert future.name == wire_key(key)
    assert repr(futures[("x", 1)]) == "<Future: status: pending, key: ('x', 1)>"


def test_held_futures_are_listed_and_found_by_the_user_s_keys():
    import threading
    import types

    states = {"17": "the int's", "str:17": "the string's", "('x', 1)": "the tuple's"}
    core = types.SimpleNamespace(lock=threading.Lock(), state=types.SimpleNamespace(
        held_states=lambda: states))
    held = HeldFutures(core)  # type: ignore[arg-type]
    assert set(held) == {17, "17", ("x", 1)}
    assert held[17] == "the int's" and held["17"] == "the string's"
    assert held[("x", np.int64(1))] == "the tuple's"
    assert None not in held and [1] not in held
    with pytest.raises(KeyError):
        held[18]


def test_a_future_made_from_a_key_of_another_type_is_named_on_the_wire(make_future):
    future = make_future(("x", np.int64(1)))
    assert future.name == "('x', 1)" and future.key == ("x", 1)


@pytest.mark.parametrize("name", [
    "('x-79963f7e613e5e55838d2232920baed2', 0, 1)", "('x', -3)", "('', 0)", "('x', -0)",
    "('x',)", "('x')", "('x', 007)", "('x', 1, )", "('x',  1)", "('a\\\\b', 1)",
    "('it''s', 1)", "('x', 1)(", "('x', 1.0)", "('x', 10000000000000000000000)",
    "('x', 0)\n", "('ü', 2)", "(\"x\", 1)"], ids=repr)
def test_a_chunk_s_name_reads_as_the_key_whose_name_it_is_or_stays_the_string(name):
    import ast
    try:
        parsed = ast.literal_eval(name)
    except (ValueError, SyntaxError):
        parsed = name
    canonical = type(parsed) is not str and wire_key(parsed) == name
    assert same(user_key(name), parsed if canonical else name)
