"""Hypothesis strategies for the wire: msgpack values, message maps, messages, batches.

Needs Hypothesis (a test dependency, not a dependency of dist-protocol). Used by the fuzz
tests and ``fuzz/fuzz_decoder.py``; other implementations' test suites may use them too.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

import msgpack
from hypothesis import strategies as st

from .framing import frames_to_bytes
from .messages import OPS
from .serialize import SERIALIZERS, Payload

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


def msgpack_values(max_leaves: int = 12, comparable: bool = False) -> st.SearchStrategy:
    """Any value msgpack can carry; ``comparable`` leaves out NaN and extension types, so a
    value equals itself after a round trip."""
    scalars = (st.none() | st.booleans() | st.integers(INT64_MIN, UINT64_MAX)
               | st.floats(allow_nan=not comparable) | st.text(max_size=12)
               | st.binary(max_size=12))
    if not comparable:
        scalars |= st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=max_leaves)


def _field_values(tp: Any, minimum: float | None = None) -> st.SearchStrategy:
    """Values of the wire type ``tp`` (no NaN: a message must equal itself after a trip), its
    numbers at least ``minimum`` when the field has one."""
    if minimum is not None:
        if tp is int:
            return st.integers(int(minimum), UINT64_MAX)
        if tp is float:
            return st.floats(min_value=minimum, allow_nan=False, allow_infinity=False)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is dict:
            return st.dictionaries(st.text(max_size=8), _field_values(args[1], minimum),
                                   max_size=3)
        if origin in (Union, types.UnionType):
            return st.one_of([st.none() if a is type(None) else _field_values(a, minimum)
                              for a in args])
    if tp is Any:
        return msgpack_values(6, comparable=True)
    if tp is Payload:
        return payloads()
    simple = {str: st.text(max_size=16), int: st.integers(INT64_MIN, UINT64_MAX),
              float: st.floats(allow_nan=False), bool: st.booleans(), bytes: st.binary(max_size=40)}
    if tp in simple:
        return simple[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return st.lists(_field_values(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), _field_values(args[1]), max_size=3)
    if origin in (Union, types.UnionType):
        return st.one_of([st.none() if a is type(None) else _field_values(a) for a in args])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _records(tp)
    raise TypeError(f"no strategy for {tp!r}")


def payloads() -> st.SearchStrategy:
    one_frame = st.lists(st.binary(max_size=40), min_size=1, max_size=1)
    return st.one_of(
        st.builds(Payload, st.sampled_from(["msgpack", "bytes"]), one_frame),
        st.builds(Payload, st.just("pickle"), st.lists(st.binary(max_size=40), min_size=1,
                                                       max_size=3)))


def _records(cls: type) -> st.SearchStrategy:
    """Instances of a message or record class; optional fields are sometimes left unset."""
    hints = typing.get_type_hints(cls)
    required: dict[str, st.SearchStrategy] = {}
    optional: dict[str, st.SearchStrategy] = {}
    for f in dataclasses.fields(cls):
        has_default = (f.default is not dataclasses.MISSING
                       or f.default_factory is not dataclasses.MISSING)
        (optional if has_default else required)[f.name] = _field_values(
            hints[f.name], f.metadata.get("minimum"))
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


def messages(ops: list[str] | None = None) -> st.SearchStrategy:
    """Valid messages of the given ops (default: every op)."""
    chosen = sorted(OPS) if ops is None else ops
    return st.one_of([_records(OPS[op]) for op in chosen])


def message_maps() -> st.SearchStrategy:
    """Wire maps that look like messages: a known op (or not) and its field names mapped to
    values of any type, so validation meets every kind of wrong value."""
    values = msgpack_values(6) | _payload_maps()

    def for_op(op: str) -> st.SearchStrategy:
        names = [f.name for f in OPS[op].fields]
        fields = st.dictionaries(st.sampled_from(names), values) if names else st.just({})
        return fields.map(lambda chosen: {**chosen, "op": op})
    unknown = st.dictionaries(st.text(max_size=6), values, max_size=3)
    return st.one_of([for_op(op) for op in sorted(OPS)] + [unknown])


def _payload_maps() -> st.SearchStrategy:
    """Payload references, mostly well formed, sometimes pointing at frames that don't exist."""
    return st.fixed_dictionaries({
        "serializer": st.sampled_from([*SERIALIZERS, "yaml"]),
        "frames": st.lists(st.integers(-1, 4) | st.booleans() | st.text(max_size=2), max_size=3),
    })


def batches() -> st.SearchStrategy:
    """Frame lists: frame 0 packs a list of message-like maps, then a few payload frames."""
    frame0 = st.lists(message_maps(), max_size=4).map(
        lambda maps: msgpack.packb(maps, use_bin_type=True))
    return st.builds(lambda head, rest: [head, *rest], frame0,
                     st.lists(st.binary(max_size=16), max_size=4))


def wire_bytes() -> st.SearchStrategy:
    """Byte strings near the frame format: real batches, cut, spliced and bit-flipped."""
    encoded = st.lists(batches(), min_size=1, max_size=3).map(
        lambda bs: b"".join(frames_to_bytes(b) for b in bs))
    edits = st.tuples(st.sampled_from(["keep", "cut", "replace", "insert"]),
                      st.integers(0, 2**16), st.binary(min_size=1, max_size=9))
    return st.binary(max_size=64) | st.builds(_damage, encoded, edits)


def _damage(data: bytes, edit: tuple[str, int, bytes]) -> bytes:
    kind, where, extra = edit
    i = where % len(data)
    if kind == "cut":
        return data[:i]
    if kind == "replace":
        return data[:i] + extra[:1] + data[i + 1:]
    if kind == "insert":
        return data[:i] + extra + data[i:]
    return data


__all__ = ["batches", "message_maps", "messages", "msgpack_values", "payloads", "wire_bytes"]
