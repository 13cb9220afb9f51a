"""Column blocks: a run of messages of one op as one array per field (feature ``columns``).

A map's hundred ``compute-task`` messages to one worker repeat every field name a hundred
times, and the same function and pickle tag: msgpack reads (and interns) each name again, and
the generated decoder checks each field of each message apart. As a block the run is
``[op, count, columns, shared]`` (PROTOCOL.md, Column blocks): each field that varies is one
array of ``count`` values, a field equal in every message is given once, a field at its
default everywhere is left out. The receiver turns the block back into the same messages, in
order, checking each column as a whole, so nothing above the codec sees a difference.

As in ``codegen``, each message class gets a generated decoder for blocks that takes only
the well-formed common case. Anything else sends the block the long way: it is expanded into
the message maps it stands for and each is decoded as one sent alone would be, so a block is
accepted or refused exactly as those messages would be, with the same errors. No I/O.
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from .codegen import (Slow, Source, default_source, emit_union, emit_value, field_encoding,
                      generatable, twin_class)
from .errors import InvalidMessage, UnknownOp
from .serialize import Payload
from .wiretypes import field_hints, field_specs

FEATURE = "columns"
MAX_COUNT = 100_000  # messages in one block: a receiver refuses more
MIN_RUN = 2  # the sender makes a block of a run of at least this many messages of one op

BlockDecoder = Callable[[int, dict[str, Any], dict[str, Any], list[Any]], list[Any]]
BlockEncoder = Callable[[list[Any], list[Any], dict[Any, Any]],
                        tuple[dict[str, Any], dict[str, Any]]]
_DECODERS: dict[type, BlockDecoder | None] = {}
_ENCODERS: dict[type, BlockEncoder] = {}
_PAYLOAD_CLASSES: dict[type, bool] = {}
_SCALARS = (str, int, float, bool, bytes, Payload, type(None))


def _copied(tp: Any) -> bool:
    """Whether a value of ``tp`` may hold a list or map its message keeps: a value shared by
    a block's messages is then copied for each, as each message read alone has its own."""
    if tp in _SCALARS:
        return False
    if typing.get_origin(tp) in (Union, types.UnionType):
        return any(_copied(option) for option in typing.get_args(tp))
    return True


def _payloads(tp: Any) -> bool:
    if tp is Payload:
        return True
    return any(_payloads(arg) for arg in typing.get_args(tp))


def carries_payloads(cls: type) -> bool:
    """Whether messages of ``cls`` may add payload frames to a batch."""
    found = _PAYLOAD_CLASSES.get(cls)
    if found is None:
        hints = field_hints(cls, [spec.name for spec in field_specs(cls)])
        found = _PAYLOAD_CLASSES[cls] = any(_payloads(tp) for tp in hints.values())
    return found


def _fresh(value: Any) -> Any:
    """A copy of a msgpack value's lists and maps (its scalars are immutable)."""
    kind = type(value)
    if kind is list:
        return [_fresh(item) for item in value]
    if kind is dict:
        return {key: _fresh(item) for key, item in value.items()}
    return value


# -- the generated functions -------------------------------------------------------------------

def _decoder_source(cls: type) -> BlockDecoder:
    """``block_<Class>(n, columns, shared, frames)``: the ``n`` messages, or ``Slow``. The
    block's shape (column lengths, key types) is checked before it is called."""
    src = Source()
    wire = {spec.name: spec for spec in field_specs(cls)}
    hints = field_hints(cls, list(wire))
    name = f"block_{cls.__name__}"
    fresh, intern = src.name(_fresh, "fresh"), src.name(sys.intern, "intern")
    src.emit(0, f"def {name}(n, columns, shared, frames):")
    lists: list[tuple[str, str]] = []
    for field in dataclasses.fields(cls):
        spec, out = wire.get(field.name), src.tmp()
        lists.append((field.name, out))
        made_each = field.default_factory is not dataclasses.MISSING
        if spec is None:  # not a wire field: its default
            src.emit(1, f"{out} = [{default_source(src, field)} for _ in range(n)]")
            continue
        tp, interned = hints[field.name], bool(field.metadata.get("shared"))
        optional_union = (not spec.required
                          and typing.get_origin(tp) in (Union, types.UnionType))
        # Given once for all (or left out): one value, checked once, or a copy for each.
        src.emit(1, f"c = columns.get({field.name!r})")
        src.emit(1, "if c is None:")
        src.emit(2, f"x = shared.get({field.name!r})")
        src.emit(2, "if x is None:")
        if spec.required:
            src.emit(3, "raise Slow")
        elif made_each:
            src.emit(3, f"{out} = [{default_source(src, field)} for _ in range(n)]")
        else:
            src.emit(3, f"{out} = [{default_source(src, field)}] * n")
        src.emit(2, "else:")
        if _copied(tp):
            src.emit(3, f"c = [{fresh}(x) for _ in range(n)]")
        else:
            result = _checks(src, 3, tp, "x", spec.minimum, optional_union)
            src.emit(3, f"{out} = [{f'{intern}({result})' if interned else result}] * n")
        # A column: each value checked, in one loop.
        src.emit(1, "if c is not None:")
        if spec.required:
            start = len(src.lines)
            src.emit(2, "for x in c:")
            result = emit_value(src, 3, tp, "x", spec.minimum)
            if result == "x" and not interned:  # only checked: the column is kept
                if len(src.lines) == start + 1:  # (nothing to check)
                    src.lines.pop()
                src.emit(2, f"{out} = c")
            else:
                src.lines.insert(start, "    " * 2 + f"{out} = []")
                src.emit(3, f"{out}.append({f'{intern}({result})' if interned else result})")
        else:
            src.emit(2, f"{out} = []")
            src.emit(2, "for x in c:")
            src.emit(3, "if x is None:")
            src.emit(4, f"{out}.append({default_source(src, field)})")
            src.emit(3, "else:")
            result = _checks(src, 4, tp, "x", spec.minimum, optional_union)
            src.emit(4, f"{out}.append({f'{intern}({result})' if interned else result})")
    src.emit(1, "out = []")
    src.emit(1, "append = out.append")
    items = [f"a{i}" for i in range(len(lists))]
    if len(lists) > 1:
        src.emit(1, f"for {', '.join(items)} in zip({', '.join(v for _, v in lists)}):")
    elif lists:
        src.emit(1, f"for a0 in {lists[0][1]}:")
    else:
        src.emit(1, "for _ in range(n):")
    src.emit(2, f"o = {src.name(twin_class(cls), 'twin')}()")
    for (field_name, _), item in zip(lists, items):
        src.emit(2, f"o.{field_name} = {item}")
    src.emit(2, f"o.__class__ = {src.name(cls, 'cls')}")
    src.emit(2, "append(o)")
    src.emit(1, "return out")
    decode: BlockDecoder = src.compile(name)
    return decode


def _checks(src: Source, indent: int, tp: Any, value: str, minimum: float | None,
            optional_union: bool) -> str:
    """The checks of one value that is not nil, as the per-message decoder emits them."""
    result = None
    if optional_union:  # (nil is handled by the caller)
        result = emit_union(src, indent, tp, value, minimum, none_handled=True)
    return result if result is not None else emit_value(src, indent, tp, value, minimum)


def _encoder_source(cls: type) -> BlockEncoder:
    """``encode_block_<Class>(run, frames, seen)``: the block's columns and shared values,
    each map in the catalogue's field order."""
    src = Source()
    specs = field_specs(cls)
    hints = field_hints(cls, [spec.name for spec in specs])
    name = f"encode_block_{cls.__name__}"
    src.emit(0, f"def {name}(run, frames, seen):")
    src.emit(1, "n = len(run)")
    src.emit(1, "columns = {}")
    src.emit(1, "shared = {}")
    for spec in specs:
        key = repr(spec.name)
        src.emit(1, f"c = [m.{spec.name} for m in run]")
        encoded = field_encoding(src, spec, hints, "v")
        if encoded is not None:
            if spec.required:
                src.emit(1, f"c = [{encoded} for v in c]")
            else:
                src.emit(1, f"c = [None if v is None else {encoded} for v in c]")
        default = None if spec.required else (
            spec.default() if callable(spec.default) else spec.default)
        if default is not None and type(default) not in (bool, int, float, str):
            default_name = src.name(default, "default")  # an empty list or map
        else:
            default_name = repr(default)
        if _copied(hints[spec.name]):
            # Lists and maps: a column, unless every message has the default (never shared:
            # equal containers may hold values of other types that compare equal, 1 and 1.0).
            if spec.required:
                src.emit(1, f"columns[{key}] = c")
            else:
                src.emit(1, f"if c.count({default_name}) != n:")
                src.emit(2, f"columns[{key}] = c")
            continue
        src.emit(1, "first = c[0]")
        src.emit(1, "if c.count(first) != n:")
        src.emit(2, f"columns[{key}] = c")
        if spec.required:
            src.emit(1, "else:")
        else:
            src.emit(1, f"elif first is not None and first != {default_name}:")
        src.emit(2, f"shared[{key}] = first")
    src.emit(1, "return columns, shared")
    encode: BlockEncoder = src.compile(name)
    return encode


# -- blocks ------------------------------------------------------------------------------------

def encode_block(run: list[Any], frames: list[Any], seen: dict[Any, Any]) -> list[Any] | None:
    """The block of ``run`` (messages of one class, at most ``MAX_COUNT``), its payload frames
    appended to ``frames``; None when every field of every message is at its default (such a
    block would have no column: those messages go as they are)."""
    cls = type(run[0])
    encode = _ENCODERS.get(cls)
    if encode is None:
        encode = _ENCODERS[cls] = _encoder_source(cls)
    columns, shared = encode(run, frames, seen)
    if not columns:
        if not shared:
            return None
        first = next(iter(shared))  # a block has at least one column
        columns[first] = [shared.pop(first)] * len(run)
    return [cls.op, len(run), columns, shared]


def decode_block(item: list[Any], frames: list[Any], ops: dict[str, type]) -> list[Any]:
    """The messages a block of frame 0 stands for. Raises ``InvalidMessage`` (``UnknownOp``
    for an op not in ``ops``) for a malformed block or any message of it that is."""
    if len(item) != 4:
        raise InvalidMessage(f"a column block is an array of 4 items (op, count, columns, "
                             f"shared), not {len(item)}")
    op, count, columns, shared = item
    if type(op) is not str:
        raise InvalidMessage("a column block's op must be a string")
    cls = ops.get(op)
    if cls is None:
        raise UnknownOp(f"unknown op {op!r}")
    if type(count) is not int or not 1 <= count <= MAX_COUNT:
        raise InvalidMessage(f"a column block's count must be an int from 1 to {MAX_COUNT:,}, "
                             f"not {count!r}")
    if type(columns) is not dict or type(shared) is not dict:
        raise InvalidMessage("a column block's columns and shared values must be maps")
    if not columns:
        raise InvalidMessage("a column block has at least one column")
    for name, column in columns.items():
        if type(name) is not str or name == "op" or name in shared:
            raise InvalidMessage(f"column {name!r}: a field name, not 'op', given once")
        if type(column) is not list or len(column) != count:
            raise InvalidMessage(f"column {name!r} must be an array of {count} values")
    for name in shared:
        if type(name) is not str or name == "op":
            raise InvalidMessage(f"shared value {name!r}: a field name, not 'op'")
    try:
        decode = _DECODERS[cls]
    except KeyError:
        decode = _DECODERS[cls] = _decoder_source(cls) if generatable(cls) else None
    if decode is not None:
        try:
            return decode(count, columns, shared, frames)
        except (Slow, InvalidMessage, RecursionError):
            pass
    return [cls._decode(message, frames)  # type: ignore[attr-defined]
            for message in expand(op, count, columns, shared)]


def expand(op: str, count: int, columns: dict[str, Any], shared: dict[str, Any]
           ) -> list[dict[str, Any]]:
    """The message maps a block stands for: each message has every shared value (its own
    copy) and its own value of every column."""
    try:
        out = []
        for i in range(count):
            message = {name: _fresh(value) for name, value in shared.items()}
            for name, column in columns.items():
                message[name] = column[i]
            message["op"] = op
            out.append(message)
        return out
    except RecursionError:
        raise InvalidMessage("a column block's shared value is nested too deeply") from None


__all__ = ["FEATURE", "MAX_COUNT", "MIN_RUN", "carries_payloads", "decode_block",
           "encode_block", "expand"]
