"""spec/vectors/keys.json against ``dist_protocol.key_names``: every canonical key is written
as its wire name, and every wire name reads back as its key, with its type; a key equal to
another (an integral float) is written as that one's name."""
from __future__ import annotations

from typing import Any

import pytest

from dist_protocol.key_names import ESCAPE, user_key, wire_key
from dist_protocol.testing import REGENERATE_HINT, load_vectors

pytestmark = pytest.mark.timeout(60)

KEYS = load_vectors("keys")


def from_typed(typed: dict) -> Any:
    ((kind, value),) = typed.items()
    if kind == "bytes":
        return bytes.fromhex(value)
    if kind == "tuple":
        return tuple(from_typed(part) for part in value)
    return {"str": str, "int": int, "float": float}[kind](value)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, part by part (``1 == 1.0``, but not as keys' names)."""
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def test_the_escape_is_the_vectors_and_every_case_names_its_section():
    assert KEYS["escape"] == ESCAPE, REGENERATE_HINT
    names = [case["name"] for case in KEYS["cases"]]
    assert len(names) == len(set(names))
    assert all(case["section"] == "PROTOCOL.md#keys" for case in KEYS["cases"])


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in KEYS["cases"]])
def test_key_vector(case):
    key = from_typed(case["key"])
    if "reads" in case:  # a key equal to another: written as that one's name
        assert wire_key(key) == case["wire"], REGENERATE_HINT
        assert same(user_key(case["wire"]), from_typed(case["reads"])), REGENERATE_HINT
        return
    assert same(user_key(case["wire"]), key), REGENERATE_HINT
    if case["canonical"]:
        assert wire_key(key) == case["wire"], REGENERATE_HINT
    else:  # a name no client writes: the string it reads as is written escaped
        assert wire_key(key) != case["wire"]
