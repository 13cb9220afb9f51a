"""One flat decode and one flat encode function per record class, generated and compiled.

The converters of ``wiretypes`` say what a message may hold, field by field, as a chain of
closures; every message of every batch walked that chain and then went through the frozen
dataclass ``__init__``. Here each record class gets, on its first use, the source of one
function with every field's check written out (``type(x) is str``, a range, a default, a
payload reference, a nested record) and compiled once, as ``dataclasses`` does for
``__init__``. Its instance is built as an instance of a twin class with the same slots and
no frozen ``__setattr__``, then given its real class, so the message is as immutable to its
users as before.

The generated decoder only takes the common, well-formed case. Anything it is not sure of (a
subclass of ``str``, a missing field, a bad value) sends the whole message to the reference
converter of ``wiretypes``, which accepts or refuses it with the same result and the same
error as ever: the fast path is only ever narrower. The generated encoder writes the same
maps in the same key order as the reference encoder, so the bytes on the wire do not change.
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, NamedTuple, Union

from .errors import InvalidMessage
from .serialize import SERIALIZERS, Payload
from .wiretypes import (BatchFrames, Converter, Encoder, FieldSpec, bounded, converter,
                        field_hints, field_specs, new_payload_ref, read_payload_ref,
                        record_converter)


class Slow(Exception):
    """The generated decoder gives a message up to the reference converter."""


_EXACT = (str, bool, bytes)  # scalars the wire holds as exactly that Python type
_MISSING = object()
_INF = float("inf")
_FAST_DECODERS: dict[type, Converter] = {}
_ENCODERS: dict[type, Encoder] = {}


def is_record(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def generatable(cls: type) -> bool:
    """Records whose instances can be built field by field (every field set by ``__init__``,
    nothing done after it)."""
    return (all(f.init for f in dataclasses.fields(cls)) and "__slots__" in cls.__dict__
            and not hasattr(cls, "__post_init__"))


class Source:
    """The lines of one generated function, and the objects its names stand for."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {"Slow": Slow, "_INF": _INF, "_MISSING": _MISSING}
        self.count = 0

    def name(self, obj: Any, hint: str) -> str:
        for key, value in self.env.items():
            if value is obj and key.startswith(f"_{hint}"):
                return key
        self.count += 1
        key = f"_{hint}{self.count}"
        self.env[key] = obj
        return key

    def tmp(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def compile(self, name: str) -> Any:
        namespace = dict(self.env)
        exec("\n".join(self.lines), namespace)  # noqa: S102 -- our own generated source
        return namespace[name]


_new = object.__new__
_SERIALIZER = {name: name for name in SERIALIZERS}  # a payload's name: one string per serializer


def _payload(value: Any, frames: list[Any]) -> Payload:
    """``read_payload_ref`` for the usual payload reference, one plain frame of a batch. A
    payload is made without a call of ``Payload.__init__``, and remembered by its frame's
    index alone: a task's own arguments or result are read once, a map's function many times."""
    if type(value) is dict and type(frames) is BatchFrames and len(value) == 2:
        serializer, indices = value.get("serializer"), value.get("frames")
        # (an index of another type equal to a frame's, 1.0 or True, is not that frame's)
        if type(indices) is list and len(indices) == 1 and type(indices[0]) is int:
            index = indices[0]
            shared = frames.payloads
            payload = shared.get(index)
            if payload is not None and payload.serializer == serializer:
                return payload
            name = _SERIALIZER.get(serializer) if type(serializer) is str else None
            if name is not None and 0 < index < len(frames):
                payload = _new(Payload)
                payload.serializer, payload.frames, payload.compression = (
                    name, [frames[index]], None)
                shared[index] = payload
                return payload
    return read_payload_ref(value, frames)


def payload_column(column: list[Any] | dict[str, Any], frames: list[Any]
                   ) -> list[Payload | None]:
    """``_payload`` of each reference of a column of a block (nil read as None), in one
    loop rather than a call each: a map's arguments or results, one per task. A frame column
    (its shape checked already) is read without a reference map per value."""
    if type(column) is dict:
        return _frame_column(column, frames)
    if type(frames) is not BatchFrames:
        return [None if value is None else read_payload_ref(value, frames) for value in column]
    shared = frames.payloads
    count = len(frames)
    out: list[Payload | None] = []
    append = out.append
    for value in column:
        if value is None:
            append(None)
            continue
        if type(value) is dict and len(value) == 2:
            serializer, indices = value.get("serializer"), value.get("frames")
            if type(indices) is list and len(indices) == 1 and type(indices[0]) is int:
                index = indices[0]
                payload = shared.get(index)
                if payload is not None and payload.serializer == serializer:
                    append(payload)
                    continue
                name = _SERIALIZER.get(serializer) if type(serializer) is str else None
                if name is not None and 0 < index < count:
                    payload = _new(Payload)
                    payload.serializer, payload.frames, payload.compression = (
                        name, [frames[index]], None)
                    shared[index] = payload
                    append(payload)
                    continue
        append(read_payload_ref(value, frames))
    return out


def _frame_column(column: dict[str, Any], frames: list[Any]) -> list[Payload | None]:
    """The payloads of a frame column, each naming one frame of the batch; a value this
    does not take (an index that is not an int naming a frame, an unknown serializer) is
    ``Slow``: the block goes the long way, where the reference converter says what is
    wrong."""
    name = _SERIALIZER.get(column["serializer"])
    if name is None or type(frames) is not BatchFrames:
        raise Slow
    shared = frames.payloads
    count = len(frames)
    out: list[Payload | None] = []
    append = out.append
    for index in column["frames"]:
        if index is None:
            append(None)
            continue
        if type(index) is not int or not 0 < index < count:
            raise Slow
        payload = shared.get(index)
        if payload is None or payload.serializer != name:
            payload = _new(Payload)
            payload.serializer, payload.frames, payload.compression = (
                name, [frames[index]], None)
            shared[index] = payload
        append(payload)
    return out


# The key of a batch's ``seen`` that says it is written for a peer that agreed
# ``frame-columns``: a column of one-frame payloads may go as a frame column.
FRAME_COLUMNS = "frame-columns"


def payload_column_refs(column: list[Any], frames: list[Any], seen: dict[Any, Any]
                        ) -> list[Any] | dict[str, Any]:
    """A block's column of optional payloads on the wire: a frame column where the batch is
    written for a peer that reads them and each payload is one uncompressed frame of one
    serializer, not all the same (those are shared); else ``payload_refs``."""
    if FRAME_COLUMNS in seen:
        serializer = None
        indices: list[int | None] = []
        append = indices.append
        for value in column:
            if value is None:
                append(None)
                continue
            if type(value) is not Payload:
                break
            ref = seen.get(id(value))
            if ref is None:
                own = value.frames
                if len(own) != 1 or value.compression is not None:
                    break
                # Kept as the bare index (no map a task): made a map only if the payload is
                # met again where one is written (``new_payload_ref``).
                index = seen[id(value)] = len(frames)
                frames.append(own[0])
            elif type(ref) is int:
                index = ref
            elif len(ref) != 2 or len(ref["frames"]) != 1:  # (compressed, or frames of its own)
                break
            else:
                index = ref["frames"][0]
            if serializer is None:
                serializer = value.serializer
            elif value.serializer != serializer:
                break
            append(index)
        else:
            if serializer is None:
                return indices  # (every value nil: the field is left out)
            if indices.count(indices[0]) != len(indices):
                return {"serializer": serializer, "frames": indices}
            # One payload in every message: its map, for the block to share.
            known = seen.get(id(column[0]))
            ref = known if type(known) is dict else new_payload_ref(column[0], frames, seen)
            return [ref] * len(column)
    return payload_refs(column, frames, seen)


def payload_refs(column: list[Any], frames: list[Any], seen: dict[Any, Any]) -> list[Any]:
    """The wire form of each value of a column of optional payloads (as the generated
    encoders write one: nil stays nil, a payload is referenced, anything else goes as it
    is), in one loop: a map's arguments or small results, one per task."""
    out: list[Any] = []
    append = out.append
    for value in column:
        if value is None or not isinstance(value, Payload):
            append(value)
            continue
        ref = seen.get(id(value))
        if ref is None:
            own = value.frames
            if len(own) == 1 and value.compression is None:
                ref = seen[id(value)] = {"serializer": value.serializer,
                                         "frames": [len(frames)]}
                frames.append(own[0])
            else:
                ref = new_payload_ref(value, frames, seen)
        elif type(ref) is int:  # (written in a frame column before)
            ref = new_payload_ref(value, frames, seen)
        append(ref)
    return out


def is_optional_payload(tp: Any) -> bool:
    """Whether ``tp`` is ``Payload | None``."""
    return (typing.get_origin(tp) in (Union, types.UnionType)
            and set(typing.get_args(tp)) == {Payload, type(None)})


def emit_value(src: Source, indent: int, tp: Any, value: str, minimum: float | None,
           checked: bool = False) -> str:
    """Emit the checks of ``value`` (a name) as type ``tp``; the name holding the result.
    ``checked``: the type of ``value`` is known to be one ``tp`` admits (a union's branch)."""
    if tp is Any and minimum is None:
        return value
    if tp in _EXACT:
        if not checked:
            src.emit(indent, f"if type({value}) is not {tp.__name__}: raise Slow")
        return value
    if tp is int:
        if not checked:
            src.emit(indent, f"if type({value}) is not int: raise Slow")
        if minimum is not None:
            src.emit(indent, f"if {value} < {minimum!r}: raise Slow")
        return value
    if tp is float:
        if not checked:
            src.emit(indent, f"if type({value}) is not float and type({value}) is not int: "
                             "raise Slow")
        if minimum is not None:
            # as the reference: finite and at least ``minimum`` (NaN fails both comparisons)
            src.emit(indent, f"if not {minimum!r} <= {value} < _INF: raise Slow")
        return value
    if tp is Payload:
        out = src.tmp()
        src.emit(indent, f"{out} = {src.name(_payload, 'payload')}({value}, frames)")
        return out
    if is_record(tp) and generatable(tp):
        out = src.tmp()
        src.emit(indent, f"{out} = {src.name(fast_decoder(tp), 'record')}({value}, frames)")
        return out
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        if not checked and is_record(args[0]) and generatable(args[0]):
            return _record_list(src, indent, args[0], value, minimum)
        if not checked:
            src.emit(indent, f"if type({value}) is not list: raise Slow")
        return _list(src, indent, args[0], value, minimum)
    if origin is dict:
        if not checked:
            src.emit(indent, f"if type({value}) is not dict: raise Slow")
        return _map(src, indent, args[1], value, minimum)
    if origin in (Union, types.UnionType):
        union = emit_union(src, indent, tp, value, minimum)
        if union is not None:
            return union
    # Anything else: the reference converter, whose error sends the message the slow way.
    convert = converter(tp) if minimum is None else bounded(converter(tp), minimum)
    out = src.tmp()
    src.emit(indent, f"{out} = {src.name(convert, 'convert')}({value}, frames)")
    return out


class ColumnLists(NamedTuple):
    """How generated code reads and writes a list of records as a column list (feature
    ``columns``): ``decoder(cls)`` gives the reader of a column list of ``cls`` records,
    ``encode(records, frames, seen, encode_record)`` writes a list either way."""

    decoder: Callable[[type], Callable[[Any, Any], Any]]
    encode: Callable[..., Any]


_column_lists: ColumnLists | None = None


def serve_column_lists(lists: ColumnLists) -> None:
    """Called by ``columns`` as it is imported. It builds its own code with this module's
    emitters, so this module cannot import it; code generated before (none is, as
    ``messages`` imports ``columns`` first) sends a column list the reference converter's way
    and writes arrays of maps, which every peer reads."""
    global _column_lists
    _column_lists = lists


def _record_list(src: Source, indent: int, item: type, value: str,
                 minimum: float | None) -> str:
    """A list of records: an array of maps, or (feature ``columns``) a column list."""
    out = src.tmp()
    src.emit(indent, f"if type({value}) is dict:")
    if _column_lists is None:
        src.emit(indent + 1, "raise Slow")
    else:
        read = src.name(_column_lists.decoder(item), 'columns')
        src.emit(indent + 1, f"{out} = {read}({value}, frames)")
    src.emit(indent, "else:")
    src.emit(indent + 1, f"if type({value}) is not list: raise Slow")
    src.emit(indent + 1, f"{out} = {_list(src, indent + 1, item, value, minimum)}")
    return out


def _only(src: Source, indent: int, values: str, kind: type) -> None:
    """Every item of ``values`` (an iterable expression) is exactly of type ``kind``."""
    src.emit(indent, f"for v in {values}:")
    src.emit(indent + 1, f"if type(v) is not {kind.__name__}: raise Slow")


def _only_if_any(src: Source, indent: int, value: str, start: int) -> None:
    """The checks emitted since line ``start``, of the items of ``value`` kept as it is, only
    where it has any (most lists and maps of a message are empty: no loop is begun then)."""
    src.lines[start:] = ["    " * indent + f"if {value}:",
                         *("    " + line for line in src.lines[start:])]


def _list(src: Source, indent: int, item: Any, value: str, minimum: float | None) -> str:
    if item in _EXACT or (item is int and minimum is None):
        start = len(src.lines)
        _only(src, indent, value, item)
        _only_if_any(src, indent, value, start)
        return value
    out = src.tmp()
    if is_record(item) and generatable(item):
        # Each map is replaced in the list by its record as soon as it is read, so that the
        # maps of a long list (a graph's task specs, about 1.3 KB each as msgpack reads them)
        # are freed while the records are made, not all held until the last is. Should a later
        # one send the message the reference way, the reference takes a record where it finds
        # one (the record it would have made: the fast path is only ever narrower).
        decode = src.name(fast_decoder(item), "record")
        at, each = src.tmp(), src.tmp()
        start = len(src.lines)
        src.emit(indent, f"for {at}, {each} in enumerate({value}):")
        src.emit(indent + 1, f"{value}[{at}] = {decode}({each}, frames)")
        _only_if_any(src, indent, value, start)
        return value
    each, start = src.tmp(), len(src.lines)
    src.emit(indent, f"for {each} in {value}:")
    result = emit_value(src, indent + 1, item, each, minimum)
    if result == each:  # items only checked: the list is kept
        return value
    src.lines.insert(start, "    " * indent + f"{out} = []")
    src.emit(indent + 1, f"{out}.append({result})")
    return out


def _map(src: Source, indent: int, item: Any, value: str, minimum: float | None) -> str:
    first = len(src.lines)
    _only(src, indent, value, str)
    if item is Any and minimum is None:
        _only_if_any(src, indent, value, first)
        return value
    if item in _EXACT or item is int:
        _only(src, indent, f"{value}.values()", item)
        if minimum is not None:
            src.emit(indent, f"if min({value}.values()) < {minimum!r}: raise Slow")
        _only_if_any(src, indent, value, first)
        return value
    out, key, each = src.tmp(), src.tmp(), src.tmp()
    start = len(src.lines)
    src.emit(indent, f"for {key}, {each} in {value}.items():")
    result = emit_value(src, indent + 1, item, each, minimum)
    if result == each:  # values only checked: the map is kept
        src.lines[start] = "    " * indent + f"for {each} in {value}.values():"
        _only_if_any(src, indent, value, first)
        return value
    src.lines.insert(start, "    " * indent + f"{out} = {{}}")
    src.emit(indent + 1, f"{out}[{key}] = {result}")
    return out


def _kinds(tp: Any) -> tuple[type, ...] | None:
    """The exact Python types a wire value of ``tp`` decodes from, or None if unsure."""
    if tp in _EXACT or tp is int:
        return (tp,)
    if tp is float:
        return (float, int)
    origin = typing.get_origin(tp)
    if origin is list:
        return (list,)
    if tp is Payload or origin is dict or is_record(tp):
        return (dict,)
    return None


def emit_union(src: Source, indent: int, tp: Any, value: str, minimum: float | None,
           none_handled: bool = False) -> str | None:
    args = typing.get_args(tp)
    options = [a for a in args if a is not type(None)]
    kinds = [_kinds(a) for a in options]
    flat = [k for ks in kinds if ks is not None for k in ks]
    if any(k is None for k in kinds) or len(flat) != len(set(flat)):
        return None  # options that share a kind: left to the reference converter's tries
    if none_handled and len(options) == 1:
        return emit_value(src, indent, options[0], value, minimum)
    out = src.tmp()
    branch = "if"
    if len(options) != len(args) and not none_handled:
        src.emit(indent, f"if {value} is None:")
        src.emit(indent + 1, f"{out} = None")
        branch = "elif"
    for option, option_kinds in zip(options, kinds):
        assert option_kinds is not None
        test = " or ".join(f"type({value}) is {k.__name__}" for k in option_kinds)
        src.emit(indent, f"{branch} {test}:")
        result = emit_value(src, indent + 1, option, value, minimum, checked=True)
        src.emit(indent + 1, f"{out} = {result}")
        branch = "elif"
    src.emit(indent, "else:")
    src.emit(indent + 1, "raise Slow")
    return out


def default_source(src: Source, field: dataclasses.Field[Any]) -> str:
    if field.default_factory is list:
        return "[]"
    if field.default_factory is dict:
        return "{}"
    if field.default_factory is not dataclasses.MISSING:
        return f"{src.name(field.default_factory, 'factory')}()"
    if field.default is None or type(field.default) in (bool, int, str):
        return repr(field.default)
    return src.name(field.default, "default")


def twin_class(cls: type) -> type:
    """A class with ``cls``'s slots and bases but without its frozen ``__setattr__``: an
    instance is filled in as one of these, then its ``__class__`` becomes ``cls``."""
    return type(cls.__name__, cls.__bases__, {"__slots__": cls.__dict__["__slots__"],
                                                "__module__": cls.__module__})


def _decoder_source(cls: type, name: str, guarded: bool) -> Any:
    """The fast decoder of ``cls`` (raising ``Slow`` on anything unusual) or, ``guarded``,
    the decoder that falls back to the reference converter."""
    src = Source()
    fields = dataclasses.fields(cls)
    wire = {spec.name: spec for spec in field_specs(cls)}
    hints = field_hints(cls, list(wire))
    body = 2 if guarded else 1
    src.emit(0, f"def {name}(value, frames):")
    if guarded:
        src.emit(1, "try:")
    src.emit(body, "if type(value) is not dict: raise Slow")
    src.emit(body, "get = value.get")
    src.emit(body, f"o = {src.name(twin_class(cls), 'twin')}()")
    for field in fields:
        spec = wire.get(field.name)
        if spec is None:
            src.emit(body, f"o.{field.name} = {default_source(src, field)}")
            continue
        if spec.required:
            src.emit(body, f"x = get({field.name!r}, _MISSING)")
            src.emit(body, "if x is _MISSING: raise Slow")
            result = emit_value(src, body, hints[field.name], "x", spec.minimum)
            src.emit(body, f"o.{field.name} = {result}")
        else:
            src.emit(body, f"x = get({field.name!r})")
            src.emit(body, "if x is None:")
            src.emit(body + 1, f"o.{field.name} = {default_source(src, field)}")
            src.emit(body, "else:")
            tp = hints[field.name]
            result = None
            if typing.get_origin(tp) in (Union, types.UnionType):  # None is handled above
                result = emit_union(src, body + 1, tp, "x", spec.minimum, none_handled=True)
            if result is None:
                result = emit_value(src, body + 1, tp, "x", spec.minimum)
            if field.metadata.get("shared"):  # (a str by now: see wiretypes.wire_field)
                result = f"{src.name(sys.intern, 'intern')}({result})"
            src.emit(body + 1, f"o.{field.name} = {result}")
    src.emit(body, f"o.__class__ = {src.name(cls, 'cls')}")
    src.emit(body, "return o")
    if guarded:
        src.emit(1, f"except ({src.name(Slow, 'Slow')}, {src.name(InvalidMessage, 'Invalid')}):")
        src.emit(2, f"return {src.name(record_converter(cls), 'reference')}(value, frames)")
    return src.compile(name)


def fast_decoder(cls: type) -> Converter:
    """``cls``'s generated decoder for use inside another one: raises ``Slow`` (or the
    ``InvalidMessage`` of a payload) where the reference converter must decide."""
    decode = _FAST_DECODERS.get(cls)
    if decode is None:
        decode = _FAST_DECODERS[cls] = _decoder_source(cls, f"fast_{cls.__name__}", False)
    return decode


def decoder(cls: type) -> Converter:
    """A converter of a wire map to a ``cls``, as ``record_converter(cls)`` but faster."""
    if not generatable(cls):
        return record_converter(cls)
    decode: Converter = _decoder_source(cls, f"decode_{cls.__name__}", True)
    return decode


def _encoding(src: Source, tp: Any, value: str) -> str | None:
    """The expression of ``value``'s wire form, or None when it goes on the wire as it is."""
    if tp is Payload:
        ref, known = src.name(new_payload_ref, "payload"), src.tmp()
        # (a map already written, else a new one: a payload in ``seen`` as a bare frame
        # index, from a frame column, gets its map then)
        return (f"({known} if type({known} := seen.get(id({value}))) is dict "
                f"else {ref}({value}, frames, seen))")
    if is_record(tp):
        return f"{src.name(encoder(tp), 'record')}({value}, frames, seen)"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        if is_record(args[0]) and _column_lists is not None:
            # an array of maps, or (feature ``columns``) a column list; an empty one (most
            # often: a task-finished's transfers) without the call
            return (f"({src.name(_column_lists.encode, 'columns')}({value}, frames, seen, "
                    f"{src.name(encoder(args[0]), 'record')}) if {value} else [])")
        each = _encoding(src, args[0], "x")
        return None if each is None else f"[{each} for x in {value}]"
    if origin is dict:
        each = _encoding(src, args[1], "x")
        return None if each is None else f"{{k: {each} for k, x in {value}.items()}}"
    if origin in (Union, types.UnionType):
        # as ``wiretypes.encoder``: a payload option, or else a single record option
        if Payload in args:
            return (f"({_encoding(src, Payload, value)} if isinstance({value}, "
                    f"{src.name(Payload, 'Payload')}) else {value})")
        records = [a for a in args if is_record(a)]
        if len(records) == 1:
            return (f"({_encoding(src, records[0], value)} if isinstance({value}, "
                    f"{src.name(records[0], 'cls')}) else {value})")
    return None


def field_encoding(src: Source, spec: FieldSpec, hints: dict[str, Any],
                    value: str) -> str | None:
    encoded = _encoding(src, hints[spec.name], value)
    if encoded is None and spec.encode is not None:  # a shape this module does not know
        encoded = f"{src.name(spec.encode, 'encode')}({value}, frames, seen)"
    return encoded


def _encoder_source(cls: type, op: str | None) -> Any:
    src = Source()
    hints = field_hints(cls, [spec.name for spec in field_specs(cls)])
    name = f"encode_{cls.__name__}"
    src.emit(0, f"def {name}(m, frames, seen):")
    specs = field_specs(cls)
    # The leading required fields make one dict display; the key order is the fields' order.
    leading = 0
    while leading < len(specs) and specs[leading].required:
        leading += 1
    items = []
    for spec in specs[:leading]:
        value = f"m.{spec.name}"
        items.append(f"{spec.name!r}: {field_encoding(src, spec, hints, value) or value}")
    src.emit(1, f"out = {{{', '.join(items)}}}")
    for spec in specs[leading:]:
        encoded = field_encoding(src, spec, hints, "v") or "v"
        src.emit(1, f"v = m.{spec.name}")
        if spec.required:
            src.emit(1, f"out[{spec.name!r}] = {encoded}")
        else:
            src.emit(1, "if v is not None:")
            src.emit(2, f"out[{spec.name!r}] = {encoded}")
    if op is not None:
        src.emit(1, f"out['op'] = {op!r}")
    src.emit(1, "return out")
    return src.compile(name)


def encoder(cls: type, op: str | None = None) -> Encoder:
    """The wire map of a ``cls`` (with ``op`` last, for a message), as ``record_encoder``
    makes it, but from one generated function."""
    if op is not None:
        return typing.cast(Encoder, _encoder_source(cls, op))
    encode = _ENCODERS.get(cls)
    if encode is None:
        encode = _ENCODERS[cls] = _encoder_source(cls, None)
    return encode


class _Factory:
    """The default of a field whose default is made per instance (as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def initializer(cls: type) -> Any:
    """An ``__init__`` for the frozen slots dataclass ``cls`` with the same parameters as the
    one ``dataclasses`` writes, which sets each field by ``object.__setattr__`` (a lookup
    by name per field): this one calls the slot's own descriptor."""
    src = Source()
    params, body = ["self"], []
    marker = src.name(_FACTORY, "FACTORY")
    for field in dataclasses.fields(cls):
        name = field.name
        setter = src.name(cls.__dict__[name].__set__, f"set_{name}_")
        if field.default_factory is not dataclasses.MISSING:
            params.append(f"{name}={marker}")
            factory = default_source(src, field)
            body.append(f"{setter}(self, {factory} if {name} is {marker} else {name})")
        else:
            if field.default is dataclasses.MISSING:
                params.append(name)
            else:
                params.append(f"{name}={src.name(field.default, 'default')}")
            body.append(f"{setter}(self, {name})")
    src.emit(0, f"def __init__({', '.join(params)}):")
    for line in body or ["pass"]:
        src.emit(1, line)
    init = src.compile("__init__")
    current = cls.__dict__["__init__"]
    original = getattr(current, "__wrapped__", current)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = dict(original.__annotations__)
    return init


def install_initializer(cls: type) -> None:
    """Give ``cls`` the generated ``__init__`` when its first instance is made (generating
    it for every class at import would make importing the catalogue slower)."""
    if not generatable(cls):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = initializer(cls)
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)
    # inspect.signature follows __wrapped__: the lazy one shows the dataclass parameters
    functools.update_wrapper(__init__, cls.__dict__["__init__"])
    type.__setattr__(cls, "__init__", __init__)


__all__ = ["Slow", "Source", "decoder", "default_source", "emit_union", "emit_value", "encoder",
           "fast_decoder", "field_encoding", "generatable", "initializer", "install_initializer",
           "is_optional_payload", "payload_column", "payload_column_refs", "payload_refs",
           "is_record", "twin_class", "FRAME_COLUMNS"]
