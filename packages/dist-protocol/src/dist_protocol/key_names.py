"""A key of any dask type as the string the wire carries, and back (PROTOCOL.md, "Keys").

Keys are strings on the wire. dask's keys are also ints, floats, bytes and tuples of those
and strings, told apart by their value: ``17`` and ``"17"`` are two keys. A key that is not
a string travels as its Python literal (``repr``: ``17``, ``('x', 1)``, ``b'a'``), the name
its task group and the dashboard read; a string that could be taken for such a literal -- it
starts with a digit, ``-``, ``(``, ``b'`` or ``b"`` -- or that starts with the escape
``str:`` itself, travels with ``str:`` in front. So two different keys never share a wire
name, and ``user_key(wire_key(k)) == k``.

The rule for a string looks at its first characters only, so that a client in any language
can follow it without parsing Python, and a string key costs one set lookup.
"""
from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Hashable
from typing import Any

ESCAPE = "str:"

# The first characters of every literal ``wire_key`` writes for a key that is not a string
# (an int, a float, bytes, a tuple).
LITERAL_STARTS = frozenset("0123456789-(b")
# The first characters of a string that may need the escape: those, and the escape's. A
# string starting with any other is its own name.
MAY_NEED_ESCAPE = LITERAL_STARTS | {ESCAPE[0]}
_BYTES_QUOTES = ("b'", 'b"')


def wire_key(key: Hashable) -> str:
    """The wire name of ``key``: a string as itself (with ``str:`` in front when it could be
    read as another key's name), anything else as its literal.

    Keys equal for dask are one name: dask looks keys up by equality, and graphs do name a
    key ``('x-abc', np.int64(0), 1)`` in one place and ``('x-abc', 0, 1)`` in another
    (``da.diagonal``'s inputs); ``1.0`` is ``1`` (dask's ``get(graph, 1.0)`` reads the key
    ``1``). Only a repr with a parenthesis, a point or an exponent inside can hold such a part.
    """
    if type(key) is str:
        if key[:1] in MAY_NEED_ESCAPE and _needs_escape(key):
            return ESCAPE + key
        return key
    kind = type(key)
    if kind is int or kind is bytes:
        return repr(key)
    if isinstance(key, str):
        return wire_key(str(key))
    name = repr(key)
    if kind is tuple and name.find("(", 1) < 0 and "." not in name and "e+" not in name:
        return name
    plain = _plain(key)
    name = repr(plain)
    # (a float's inf or nan: no literal reads them back, and "inf" is a string's name)
    if name[:1] not in LITERAL_STARTS or type(plain) is float and not math.isfinite(plain):
        raise ValueError(f"{key!r:.80} cannot name a key: a key is a string, or an int, a "
                         "finite float, bytes or a tuple of those")
    return name


def shown_key(name: str) -> str:
    """A wire name as a message shows the key to a person: a string key as itself, without
    the escape (``17-load``, not ``str:17-load``), any other as its literal, which is its
    name already. What the center's and the workers' error texts name a key by."""
    return name[len(ESCAPE):] if name.startswith(ESCAPE) else name


def _needs_escape(text: str) -> bool:
    first = text[0]
    if first == "b":
        return text.startswith(_BYTES_QUOTES)
    if first == ESCAPE[0]:
        return text.startswith(ESCAPE)
    return True


def _plain(part: Any) -> Any:
    """``part`` of a key with numbers and strings of other types (numpy's) as Python's own,
    and an integral float as the int it equals."""
    kind = type(part)
    if kind is tuple:
        return tuple(map(_plain, part))
    if kind in (str, int, bytes):
        return part
    if isinstance(part, str):
        return str(part)
    if isinstance(part, numbers.Integral):
        return int(part)
    if isinstance(part, numbers.Real):
        number = float(part)
        # (an integral float equals, and hashes as, the int: one key for dask)
        return int(number) if number.is_integer() else number
    return part


def user_key(name: str) -> Hashable:
    """The key a wire name stands for: the inverse of ``wire_key``. A name that only looks
    like a literal (``1abc``, written by a client that does not escape) stays the string."""
    first = name[:1]
    if first not in MAY_NEED_ESCAPE:
        return name
    if first == ESCAPE[0]:
        return name[len(ESCAPE):] if name.startswith(ESCAPE) else name
    if first == "b" and not name.startswith(_BYTES_QUOTES):
        return name
    chunk = _CHUNK.match(name)
    if chunk is not None and chunk[2] and chunk[1].isprintable():
        return (chunk[1], *map(int, chunk[2][2:].split(", ")))
    return _literal(name)


# A dask chunk's key, ``('x-<hex>', 0, 1)``, read without the parser (a fifth of the work):
# a name in single quotes with no escape in it (``repr`` escapes what is not printable), then
# ints as ``repr`` writes them.
_CHUNK = re.compile(r"\('([^'\\]*)'((?:, (?:0|-?[1-9][0-9]*))*)\)\Z")


@functools.lru_cache(maxsize=4096)
def _literal(name: str) -> Hashable:
    # Cached: a graph's tuple keys are read back again and again (``Future.key``).
    value = _parse(name)
    if value is None or type(value) is str:
        return name
    try:
        return value if wire_key(value) == name else name
    except ValueError:
        return name


# The tokens of a key's literal as ``repr`` writes one. Python's own parser is not used: on
# 3.11 before 3.11.8 its AST builder keeps one depth counter for the whole process, and a parse
# started while another was being built (from a finalizer, or a thread switch the collector
# allows) fails with "AST constructor recursion depth mismatch" -- in the user's parse or ours.
_TOKEN = re.compile(r"""(?P<open>\()|(?P<close>\))|(?P<comma>,\ ?)
    |(?P<text>b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*")
    |(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?)""", re.VERBOSE | re.DOTALL)
_MAX_DEPTH = 32


def _parse(name: str) -> Any:
    """The value of ``name`` read as a key's literal, or None when it is not one. Lenient in
    spacing and number forms; ``_literal`` keeps only what ``wire_key`` writes back to
    ``name`` exactly."""
    stack: list[list[Any]] = []
    done: list[Any] = []  # the whole value, once read
    at, end = 0, len(name)
    while at < end:
        token = _TOKEN.match(name, at)
        if token is None or done:
            return None
        at = token.end()
        kind = token.lastgroup
        if kind == "open":
            if len(stack) == _MAX_DEPTH:
                return None
            stack.append([])
            continue
        if kind == "comma":
            if not stack or not stack[-1]:
                return None
            continue
        if kind == "close":
            if not stack:
                return None
            value: Any = tuple(stack.pop())
        elif kind == "text":
            value = _text(token.group())
            if value is None:
                return None
        else:
            number = token.group()
            try:
                value = int(number) if number.lstrip("-").isdigit() else float(number)
            except ValueError:  # an int of more digits than Python converts
                return None
        (stack[-1] if stack else done).append(value)
    return done[0] if done and not stack else None


def _text(literal: str) -> str | bytes | None:
    try:
        if literal[0] == "b":
            return literal[2:-1].encode("ascii").decode("unicode_escape").encode("latin-1")
        return literal[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeError, ValueError):
        return None
