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
accepted or refused exactly as those messages would be, with the same errors.

A message's own list of records (a map's ``submit``: a thousand task specs) may go the same
way, as a column list ``{count, columns, shared}`` in place of the array of maps; the
generated message codec calls ``encode_list`` and ``list_decoder`` for it. No I/O.
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from .column_shape import MAX_COUNT, check_shape, expand, fresh, list_parts
from .codegen import (FRAME_COLUMNS, ColumnLists, Slow, Source, default_source, emit_union,
                      emit_value, field_encoding, generatable, is_optional_payload, is_record,
                      payload_column, payload_column_refs, serve_column_lists, twin_class)
from .errors import InvalidMessage, UnknownOp
from .serialize import Payload
from .wiretypes import BatchFrames, field_hints, field_specs

FEATURE = "columns"
# Read on a connection that agreed ``columns`` too: a column of payloads that each name one
# frame, of one serializer, as that serializer and the column of frame indices (a map's
# arguments or results: one int a task rather than a map and a list each).
FRAME_FEATURE = "frame-columns"
MIN_RUN = 2  # the sender makes a block of a run of at least this many messages of one op

BlockDecoder = Callable[[int, dict[str, Any], dict[str, Any], list[Any]], list[Any]]
BlockEncoder = Callable[[list[Any], list[Any], dict[Any, Any]],
                        tuple[dict[str, Any], dict[str, Any]]]
_DECODERS: dict[type, BlockDecoder | None] = {}
_ENCODERS: dict[type, BlockEncoder] = {}
_PAYLOAD_FIELDS: dict[type, tuple[str, ...]] = {}
_COUNTERS: dict[type, Callable[[Any], int]] = {}
_CUTTERS: dict[type, Callable[[list[Any], int, int, int], int]] = {}
_SCALARS = (str, int, float, bool, bytes, Payload, type(None))


def _copied(tp: Any) -> bool:
    """Whether a value of ``tp`` may hold a list or map its message keeps: a value shared by
    a block's messages is then copied for each, as each message read alone has its own."""
    if tp in _SCALARS:
        return False
    if typing.get_origin(tp) in (Union, types.UnionType):
        return any(_copied(option) for option in typing.get_args(tp))
    return True


# -- where a block ends: the payload frames of its messages ------------------------------------

def _payloads(tp: Any) -> bool:
    if tp is Payload:
        return True
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a record: a submit's tasks
        return any(_payloads(hint) for hint in
                   field_hints(tp, [spec.name for spec in field_specs(tp)]).values())
    return any(_payloads(arg) for arg in typing.get_args(tp))


def _payload_fields(cls: type) -> tuple[str, ...]:
    found = _PAYLOAD_FIELDS.get(cls)
    if found is None:
        hints = field_hints(cls, [spec.name for spec in field_specs(cls)])
        found = _PAYLOAD_FIELDS[cls] = tuple(name for name, tp in hints.items()
                                             if _payloads(tp))
    return found


def carries_payloads(cls: type) -> bool:
    """Whether messages of ``cls`` may add payload frames to a batch."""
    return bool(_payload_fields(cls))


def _frames_in(value: Any) -> int:
    """Payload frames anywhere in a value (a map of payloads, a list of records...)."""
    kind = type(value)
    if kind is Payload:
        return len(value.frames)
    if kind is list:
        return sum(_frames_in(item) for item in value)
    if kind is dict:
        return sum(_frames_in(item) for item in value.values())
    if value is None or kind is str:
        return 0
    return frames_at_most(value)


def frames_at_most(message: Any) -> int:
    """The payload frames ``message`` (or record) adds to a batch at most (a payload it
    shares with others counts each time)."""
    cls = type(message)
    count = _COUNTERS.get(cls)
    if count is None:
        count = _COUNTERS[cls] = _counter_source(cls)
    return count(message)


def _count_source(src: Source, indent: int, cls: type, total: str, sign: str,
                  var: str = "m", depth: int = 0) -> None:
    """The lines that add (``sign`` "+") or take (``sign`` "-") the payload frames of the
    message or record ``var`` to or from ``total``."""
    payload = src.name(Payload, "Payload")
    value = f"v{depth}"
    hints = field_hints(cls, list(_payload_fields(cls)))
    for field, tp in hints.items():
        src.emit(indent, f"{value} = {var}.{field}")
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is Payload or (origin in (Union, types.UnionType) and Payload in args):
            src.emit(indent, f"if type({value}) is {payload}: {total} {sign}= len({value}.frames)")
        elif origin is list and is_record(args[0]) and depth < 2:  # a submit's tasks
            record = f"r{depth}"
            src.emit(indent, f"if {value}:")
            src.emit(indent + 1, f"for {record} in {value}:")
            _count_source(src, indent + 2, args[0], total, sign, record, depth + 1)
        else:
            src.emit(indent, f"if {value}: {total} {sign}= {src.name(_frames_in, 'frames')}"
                             f"({value})")


def _counter_source(cls: type) -> Callable[[Any], int]:
    src = Source()
    src.emit(0, f"def count_{cls.__name__}(m):")
    src.emit(1, "n = 0")
    _count_source(src, 1, cls, "n", "+")
    src.emit(1, "return n")
    count: Callable[[Any], int] = src.compile(f"count_{cls.__name__}")
    return count


def _cutter_source(cls: type) -> Callable[[list[Any], int, int, int], int]:
    """``block_end`` for messages of ``cls``, one generated loop: it runs over every message
    of a block that may carry payloads."""
    src = Source()
    src.emit(0, f"def cut_{cls.__name__}(run, start, end, room):")
    src.emit(1, "i = start")
    src.emit(1, "while i < end:")
    src.emit(2, "m = run[i]")
    src.emit(2, "i += 1")
    _count_source(src, 2, cls, "room", "-")
    src.emit(2, "if room <= 0: break")
    src.emit(1, "return i")
    cut: Callable[[list[Any], int, int, int], int] = src.compile(f"cut_{cls.__name__}")
    return cut


def block_end(run: list[Any], start: int, end: int, room: int) -> int:
    """Where a block of ``run[start:end]`` ends so that it holds the message that may bring
    the batch's payload frames to ``room`` more, and none after it."""
    cls = type(run[start])
    cut = _CUTTERS.get(cls)
    if cut is None:
        cut = _CUTTERS[cls] = _cutter_source(cls)
    return cut(run, start, end, room)


# -- the generated functions -------------------------------------------------------------------

def _decoder_source(cls: type) -> BlockDecoder:
    """``block_<Class>(n, columns, shared, frames)``: the ``n`` messages, or ``Slow``. The
    block's shape (column lengths, key types) is checked before it is called."""
    src = Source()
    wire = {spec.name: spec for spec in field_specs(cls)}
    hints = field_hints(cls, list(wire))
    name = f"block_{cls.__name__}"
    fresh_copy, intern = src.name(fresh, "fresh"), src.name(sys.intern, "intern")
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
            src.emit(3, f"c = [{fresh_copy}(x) for _ in range(n)]")
        else:
            result = _checks(src, 3, tp, "x", spec.minimum, optional_union)
            src.emit(3, f"{out} = [{f'{intern}({result})' if interned else result}] * n")
        # A column: each value checked, in one loop.
        src.emit(1, "if c is not None:")
        if not (is_optional_payload(tp) and field.default is None):
            # (a frame column here goes the long way, expanded into what it stands for)
            src.emit(2, "if type(c) is not list: raise Slow")
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
        elif is_optional_payload(tp) and field.default is None:
            # (a task's arguments or result: one call for the column, not one a message)
            src.emit(2, f"{out} = {src.name(payload_column, 'payloads')}(c, frames)")
        else:
            default = default_source(src, field)
            start = len(src.lines)
            src.emit(2, f"{out} = []")
            src.emit(2, "for x in c:")
            src.emit(3, "if x is None:")
            src.emit(4, f"{out}.append({default})")
            src.emit(3, "else:")
            result = _checks(src, 4, tp, "x", spec.minimum, optional_union)
            if result == "x" and not interned:
                # Only checked: the column is kept as it came unless it holds a nil (a run's
                # start and stop: no list built value by value).
                src.lines[start] = "    " * 2 + "nil = False"
                src.lines[start + 3] = "    " * 4 + "nil = True"
                if len(src.lines) == start + 5:  # (nothing to check)
                    src.emit(4, "pass")
                src.emit(2, f"{out} = [{default} if x is None else x for x in c] if nil else c")
            else:
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
        frame_column = not spec.required and is_optional_payload(hints[spec.name])
        if frame_column:
            src.emit(1, f"c = {src.name(payload_column_refs, 'payload_column_refs')}"
                        "(c, frames, seen)")
            src.emit(1, "if type(c) is dict:")  # a frame column (its values differ)
            src.emit(2, f"columns[{key}] = c")
            src.emit(1, "else:")
        elif encoded is not None:
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
        at = 2 if frame_column else 1  # (under the frame column's ``else``)
        src.emit(at, "first = c[0]")
        src.emit(at, "if c.count(first) != n:")
        src.emit(at + 1, f"columns[{key}] = c")
        if spec.required:
            src.emit(at, "else:")
        else:
            src.emit(at, f"elif first is not None and first != {default_name}:")
        src.emit(at + 1, f"shared[{key}] = first")
    src.emit(1, "return columns, shared")
    encode: BlockEncoder = src.compile(name)
    return encode


# -- blocks and lists ----------------------------------------------------------------------

def _encoder(cls: type) -> BlockEncoder:
    encode = _ENCODERS.get(cls)
    if encode is None:
        encode = _ENCODERS[cls] = _encoder_source(cls)
    return encode


def _decoder(cls: type) -> BlockDecoder | None:
    try:
        return _DECODERS[cls]
    except KeyError:
        decode = _DECODERS[cls] = _decoder_source(cls) if generatable(cls) else None
        return decode


def _columns_of(run: list[Any], frames: list[Any], seen: dict[Any, Any]
                ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    by_column, shared = _encoder(type(run[0]))(run, frames, seen)
    if not by_column:
        if not shared:
            return None
        first = next(iter(shared))  # there is at least one column
        by_column[first] = [shared.pop(first)] * len(run)
    return by_column, shared


def encode_block(run: list[Any], frames: list[Any], seen: dict[Any, Any]) -> list[Any] | None:
    """The block of ``run`` (messages of one class, at most ``MAX_COUNT``), its payload frames
    appended to ``frames``; None when every field of every message is at its default (such a
    block would have no column: those messages go as they are)."""
    parts = _columns_of(run, frames, seen)
    if parts is None:
        return None
    return [type(run[0]).op, len(run), *parts]


def decode_block(item: list[Any], frames: list[Any], ops: dict[str, type]) -> list[Any]:
    """The messages a block of frame 0 stands for. Raises ``InvalidMessage`` (``UnknownOp``
    for an op not in ``ops``) for a malformed block or any message of it that is."""
    if len(item) != 4:
        raise InvalidMessage(f"a column block is an array of 4 items (op, count, columns, "
                             f"shared), not {len(item)}")
    op, count, by_column, shared = item
    if type(op) is not str:
        raise InvalidMessage("a column block's op must be a string")
    cls = ops.get(op)
    if cls is None:
        raise UnknownOp(f"unknown op {op!r}")
    check_shape(count, by_column, shared, "column block", reserved="op",
                frame_columns=type(frames) is BatchFrames and frames.frame_columns)
    decode = _decoder(cls)
    if decode is not None:
        try:
            return decode(count, by_column, shared, frames)
        except (Slow, InvalidMessage, RecursionError):
            pass
    return [cls._decode(message, frames)  # type: ignore[attr-defined]
            for message in expand_block(op, count, by_column, shared)]


def expand_block(op: str, count: int, by_column: dict[str, Any], shared: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """The message maps a block stands for."""
    messages = expand(count, by_column, shared)
    for message in messages:
        message["op"] = op
    return messages


# The key of ``seen`` (a batch's payload references, by id) that says the batch is written
# for a peer that agreed ``columns``: its lists of records may be column lists.
COLUMNAR = "columnar"


def encode_list(records: list[Any], frames: list[Any], seen: dict[Any, Any],
                encode_record: Any) -> Any:
    """A list of records (of one class) on the wire: a column list where the batch is written
    for a peer that agreed ``columns`` and the list has a run to gain from, else an array."""
    if COLUMNAR in seen and MIN_RUN <= len(records) <= MAX_COUNT \
            and all(type(record) is type(records[0]) for record in records):
        parts = _columns_of(records, frames, seen)
        if parts is not None:
            return {"count": len(records), "columns": parts[0], "shared": parts[1]}
    return [encode_record(record, frames, seen) for record in records]


def list_decoder(cls: type) -> Any:
    """The generated decoder's reading of a column list of ``cls`` records: the records, or
    ``Slow`` for anything the reference converter must judge (a batch that is not
    columnar, a malformed list, an odd value)."""
    decode = _decoder(cls)

    def decode_list(value: dict[Any, Any], frames: list[Any]) -> list[Any]:
        if decode is None or type(frames) is not BatchFrames or not frames.columnar:
            raise Slow
        try:
            count, by_column, shared = list_parts(value, frames.frame_columns)
        except InvalidMessage:
            raise Slow from None
        return decode(count, by_column, shared, frames)
    return decode_list


serve_column_lists(ColumnLists(list_decoder, encode_list))

__all__ = ["COLUMNAR", "FEATURE", "FRAME_COLUMNS", "FRAME_FEATURE", "MAX_COUNT", "MIN_RUN",
           "carries_payloads", "decode_block", "block_end", "frames_at_most",
           "encode_block", "encode_list", "expand_block", "list_decoder"]
