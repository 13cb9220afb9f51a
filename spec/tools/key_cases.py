"""The cases behind spec/vectors/keys.json: keys of every dask type and their wire names,
computed with dist_protocol.key_names (see generate.py and PROTOCOL.md, "Keys")."""
from __future__ import annotations

from typing import Any

from dist_protocol.key_names import user_key, wire_key

SECTION = "PROTOCOL.md#keys"

# name -> the key; each is written by wire_key and read back by user_key.
ROUND_TRIPS: list[tuple[str, Any]] = [
    ("plain-string", "inc-79963f7e613e5e55838d2232920baed2"),
    ("empty-string", ""),
    ("string-starting-with-b", "bar-1"),
    ("string-starting-with-s", "sum-1"),
    ("string-starting-with-str-but-not-the-escape", "str-x"),
    ("string-of-an-int", "17"),
    ("string-of-a-negative-int", "-3"),
    ("string-of-a-float", "1.5"),
    ("string-of-a-tuple", "('x', 1)"),
    ("string-of-bytes", "b'a'"),
    ("string-of-bytes-double-quoted", 'b"a"'),
    ("string-starting-with-a-digit", "2026-12-07-load"),
    ("string-starting-with-a-parenthesis", "(unclosed"),
    ("string-starting-with-the-escape", "str:x"),
    ("string-that-is-the-escape", "str:"),
    ("string-escaped-twice", "str:str:17"),
    ("int", 17),
    ("negative-int", -3),
    ("big-int", 10**30),
    ("float", 1.5),
    ("float-with-exponent", 1.5e-300),
    ("bytes", b"a"),
    ("bytes-with-quotes", b"it's \"q\""),
    ("tuple", ("x", 1)),
    ("one-tuple", ("x",)),
    ("dask-array-chunk", ("x-79963f7e613e5e55838d2232920baed2", 0, 1)),
    ("nested-tuple", (("a", 1), b"z", 2.5, "str:y")),
    ("tuple-of-a-string-with-parentheses", ("f(x)", 1)),
    # Python's repr, spelled out in PROTOCOL.md for writers in other languages:
    ("float-below-the-positional-range", 1e-05),
    ("float-at-the-positional-range", 0.0001),
    ("float-of-seventeen-digits", 1234567890123456.8),
    ("tuple-of-a-string-with-a-quote", ("it's", 1)),
    ("tuple-of-a-string-with-both-quotes", ("both ' and \"", 1)),
    ("tuple-of-a-string-with-a-tab-and-a-backslash", ("tab\there\\", 1)),
    ("tuple-of-a-string-not-ascii", ("é", 1)),
    ("tuple-of-a-string-not-printable", ("\u200b\x7f", 1)),
    ("bytes-not-ascii", b"\x00\xff\x7f\\"),
    ("empty-tuple", ()),
]

# Keys equal to another, written as that one's name: an integral float is the int it equals.
EQUAL_TO_ANOTHER: list[tuple[str, Any, Any]] = [
    ("integral-float", 1.0, 1),
    ("negative-zero", -0.0, 0),
    ("large-float", 1e20, 10**20),
    ("tuple-with-an-integral-float", ("x", 2.0), ("x", 2)),
]

# Wire names no client writes (a key that only looks like a literal is escaped), read
# leniently: as the string they are.
READ_AS_TEXT: list[tuple[str, str]] = [
    ("unescaped-digit-string", "1abc"),
    ("literal-of-a-list", "(1, [2])"),
    ("literal-of-a-string", "('x')"),
    ("unescaped-negative-string", "-x"),
]


def typed(key: Any) -> Any:
    """A key in JSON with its type: ``{"str": ...}``, ``{"int": ...}``, ``{"float": ...}``,
    ``{"bytes": hex}`` or ``{"tuple": [...]}``."""
    if isinstance(key, str):
        return {"str": key}
    if isinstance(key, bytes):
        return {"bytes": key.hex()}
    if isinstance(key, float):
        return {"float": key}
    if isinstance(key, int):
        return {"int": key}
    return {"tuple": [typed(part) for part in key]}


def key_vectors() -> dict:
    cases = []
    for name, key in ROUND_TRIPS:
        wire = wire_key(key)
        assert user_key(wire) == key and type(user_key(wire)) is type(key), name
        cases.append({"name": name, "section": SECTION, "key": typed(key), "wire": wire,
                      "canonical": True})
    for name, key, equal in EQUAL_TO_ANOTHER:
        wire = wire_key(key)
        assert wire == wire_key(equal) and user_key(wire) == equal, name
        cases.append({"name": name, "section": SECTION, "key": typed(key), "wire": wire,
                      "reads": typed(equal), "canonical": False})
    for name, wire in READ_AS_TEXT:
        cases.append({"name": name, "section": SECTION, "key": typed(user_key(wire)),
                      "wire": wire, "canonical": False})
    return {
        "description": "Keys and the strings that name them on the wire (PROTOCOL.md, Keys). "
                       "'key' is typed: {\"str\": text}, {\"int\": n}, {\"float\": x}, "
                       "{\"bytes\": hex} or {\"tuple\": [keys]}. A canonical case is both "
                       "ways: a client writes 'key' as 'wire' and reads 'wire' as 'key'. A "
                       "case with 'reads' is a key equal to another: written as 'wire', "
                       "read back as 'reads'. Any other case that is not canonical is a wire "
                       "name no client writes, read as the string it is.",
        "escape": "str:",
        "cases": cases,
    }
