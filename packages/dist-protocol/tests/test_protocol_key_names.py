"""``dist_protocol.key_names`` reads names back without Python's parser: every key's name
round-trips, names only shaped like literals stay strings, and a parse of the user's running
at the same time is not disturbed."""
from __future__ import annotations

import ast
import sys

import pytest

from dist_protocol.key_names import shown_key, user_key, wire_key

pytestmark = pytest.mark.timeout(60)

ROUND_TRIPS = [
    17, -3, 0, 10**40, 1.5, -0.25, 1.5e-300, 1.5e-07, b"", b"a", b"it's \"q\"", b"\x00\xff\n\\",
    (), ("x",), ("x", 1), (("a", 1), b"z", 2.5, "str:y"), ("f(x)", 1), ("it's", 'say "hi"'),
    ("tab\there", "new\nline", "back\\slash", "\x00", "\x7f"), ("é", "€", "😀", "\ud800"),
    ("x-79963f7e613e5e55838d2232920baed2", 0, 1), (("a", (("b", ((1,),)),)),),
]


@pytest.mark.parametrize("key", ROUND_TRIPS, ids=repr)
def test_every_key_reads_back_as_itself_with_its_types(key):
    name = wire_key(key)
    assert name == repr(key)
    back = user_key(name)
    assert type(back) is type(key) and back == key and repr(back) == repr(key)


@pytest.mark.parametrize("key, equal", [
    (1.0, 1), (-0.0, 0), (1e300, int(1e300)), (2.0**60, 2**60), (True, 1),
    (("x", 1.0), ("x", 1)), (("x", 1e16, "a.b"), ("x", 10**16, "a.b")),
    ((("a", 2.0),), (("a", 2),)),
])
def test_an_integral_float_is_the_int_it_equals(key, equal):
    """dask looks keys up by equality: ``get(graph, 1.0)`` reads the key ``1``, and two
    submits under ``1`` and ``1.0`` are one task. Named apart, the first waited for ever."""
    assert key == equal
    assert wire_key(key) == wire_key(equal) == repr(equal)
    assert user_key(wire_key(key)) == equal


@pytest.mark.parametrize("name", [
    "(1,2)", "( 1, 2)", "('x')", "(1, [2])", "1_000", "0x10", "017", "-0", "1.50", "1E5",
    "('x' 1)", "(,)", "((1,)", "(1,))", "('a', 1) ", "b'\u00e9'", "'x'", "('\\N{DASH}',)",
    "1" * 5000, "(" * 40 + "1," + ")" * 40, "(1, 2", "b'a", "1abc", "-x", "(unclosed",
])
def test_a_name_only_shaped_like_a_literal_stays_the_string(name):
    assert user_key(name) == name


def test_reading_names_back_parses_nothing_with_pythons_parser(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ast used")
    monkeypatch.setattr(ast, "parse", refuse)
    monkeypatch.setattr(ast, "literal_eval", refuse)
    monkeypatch.setattr(sys.modules["builtins"], "compile", refuse)
    assert user_key("(('odd', 2), b'q', 0.25)") == (("odd", 2), b"q", 0.25)


@pytest.mark.parametrize("key, shown", [
    ("inc-1f", "inc-1f"), ("17", "17"), ("str:x", "str:x"), (17, "17"), (("x", 1), "('x', 1)"),
    (b"a", "b'a'"), ("('x', 1)", "('x', 1)")])
def test_a_key_shown_in_a_text_is_its_string_or_its_literal_without_the_escape(key, shown):
    assert shown_key(wire_key(key)) == shown
