"""The wire type system: Python annotations -> spec type names -> validating converters.

Messages are dataclasses whose annotations say their wire types. This module turns an
annotation into (a) the type name the spec's ``messages.json`` uses and (b) a converter that
checks a decoded msgpack value and resolves payload frame references. Converters raise
``InvalidMessage``; nothing else escapes them.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from typing import Any, Union
from collections.abc import Callable

from .column_shape import expand_list
from .compression import decompress_frames
from .errors import InvalidMessage, InvalidPayload
from .serialize import SERIALIZERS, Payload

Converter = Callable[[Any, list[Any]], Any]
# Encoders turn a Python value into its wire form, appending payload frames to ``frames``.
Encoder = Callable[[Any, list[Any], dict[Any, Any]], Any]

_SCALARS: dict[type, tuple[str, tuple[type, ...]]] = {
    str: ("str", (str,)),
    int: ("int", (int,)),
    float: ("float", (float, int)),
    bool: ("bool", (bool,)),
    bytes: ("bin", (bytes, bytearray, memoryview)),
}


def type_name(tp: Any) -> str:
    """The spec's name for an annotation: ``str``, ``list<str>``, ``map<payload>``..."""
    if tp is Any:
        return "any"
    if tp is Payload:
        return "payload"
    if tp in _SCALARS:
        return _SCALARS[tp][0]
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is list:
        return f"list<{type_name(args[0])}>"
    if origin is dict:
        return f"map<{type_name(args[1])}>"
    if origin in (Union, types.UnionType):
        return "|".join(type_name(a) for a in args if a is not type(None))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp.__name__
    raise TypeError(f"no wire type for {tp!r}")


class BatchFrames(list[Any]):
    """The frames of one batch being decoded, and the payloads read from them so far.

    The sender puts a payload that many messages of a batch share (the function of a map's
    tasks) on the wire once; read back, those messages share one ``Payload`` again, rather
    than each holding its own copy of it (and a receiver that sends them on, as the center
    does with a task's function, sends it once per batch in turn).
    """

    __slots__ = ("payloads", "columnar", "frame_columns")

    def __init__(self, frames: list[Any], columnar: bool = False, frame_columns: bool = False):
        super().__init__(frames)
        # by frame index (one frame, see ``codegen``) or (serializer, *indices)
        self.payloads: dict[Any, Payload] = {}
        # the connection agreed ``columns``: a list of records may be a column list
        self.columnar = columnar
        # it agreed ``frame-columns`` too: a column of one-frame payloads may be a frame column
        self.frame_columns = frame_columns


def read_payload_ref(value: Any, frames: list[Any]) -> Payload:
    shared = frames.payloads if type(frames) is BatchFrames else None
    if shared is not None and type(value) is dict and "compression" not in value:
        indices = value.get("frames")
        if type(indices) is list and type(value.get("serializer")) is str:
            key = (value.get("serializer"), *indices)
            payload = shared.get(key)
            if payload is None:
                payload = shared[key] = _read_payload(value, frames)
            return payload
    return _read_payload(value, frames)


def _read_payload(value: Any, frames: list[Any]) -> Payload:
    if type(value) is not dict:
        raise InvalidMessage("a payload must be a map with 'serializer' and 'frames'")
    serializer = value.get("serializer")
    indices = value.get("frames")
    if serializer not in SERIALIZERS:
        raise InvalidMessage(f"unknown serializer {serializer!r}")
    if type(indices) is not list or not indices:
        raise InvalidMessage("payload 'frames' must be a non-empty list of frame indices")
    if serializer != "pickle" and len(indices) != 1:
        raise InvalidPayload(f"a {serializer} payload has exactly one frame, not {len(indices)}")
    n = len(frames)
    out = []
    for i in indices:
        if type(i) is not int or not 1 <= i < n:
            raise InvalidMessage(f"payload frame index {i!r} is not a frame of this batch")
        out.append(frames[i])
    codecs = value.get("compression")
    if codecs is not None:  # the compression feature: frames arrive compressed, go on plain
        out = decompress_frames(out, codecs)
    return Payload(serializer, out)


def payload_ref(value: Payload, frames: list[Any], seen: dict[Any, Any]) -> dict[Any, Any]:
    # The same payload object used by many messages in one batch travels once.
    ref = seen.get(id(value))
    return ref if type(ref) is dict else new_payload_ref(value, frames, seen)


def new_payload_ref(value: Payload, frames: list[Any], seen: dict[Any, Any]) -> dict[Any, Any]:
    """``payload_ref`` of a payload not yet in ``seen``, or in it as the bare frame index a
    frame column wrote it with (``codegen.payload_column_refs``)."""
    index = seen.get(id(value))
    if type(index) is int:
        ref = seen[id(value)] = {"serializer": value.serializer, "frames": [index]}
        return ref
    start = len(frames)
    own = value.frames
    if len(own) == 1:
        frames.append(own[0])
        indices = [start]
    else:
        frames.extend(own)
        indices = list(range(start, len(frames)))
    ref = seen[id(value)] = {"serializer": value.serializer, "frames": indices}
    if value.compression is not None:
        ref["compression"] = value.compression
    return ref


def _identity(value: Any, frames: list[Any], seen: dict[Any, Any]) -> Any:
    return value


def _wire_kinds(tp: Any) -> tuple[type, ...]:
    """The Python types msgpack decodes a value of ``tp`` to."""
    if tp is Any:
        return (object,)
    if tp in _SCALARS:
        return _SCALARS[tp][1]
    origin = typing.get_origin(tp)
    if origin is list:
        return (list,)
    if tp is Payload or origin is dict or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return (dict,)
    if origin in (Union, types.UnionType):
        return tuple(kind for a in typing.get_args(tp) if a is not type(None)
                     for kind in _wire_kinds(a))
    raise TypeError(f"no wire type for {tp!r}")


def converter(tp: Any) -> Converter:
    if tp is Any:
        return lambda value, frames: value
    if tp is Payload:
        return read_payload_ref
    if tp in _SCALARS:
        name, accepted = _SCALARS[tp]

        def check_scalar(value: Any, frames: list[Any]) -> Any:
            if not isinstance(value, accepted) or (tp is not bool and isinstance(value, bool)):
                raise InvalidMessage(f"expected {name}, got {type(value).__name__}")
            return value
        return check_scalar
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is list:
        item = converter(args[0])
        of_records = isinstance(args[0], type) and dataclasses.is_dataclass(args[0])

        def check_list(value: Any, frames: list[Any]) -> list[Any]:
            if (of_records and type(value) is dict and type(frames) is BatchFrames
                    and frames.columnar):
                # a column list (PROTOCOL.md, Column blocks)
                value = expand_list(value, frames.frame_columns)
            if type(value) is not list:
                raise InvalidMessage(f"expected list, got {type(value).__name__}")
            return [item(v, frames) for v in value]
        return check_list
    if origin is dict:
        item = converter(args[1])

        def check_map(value: Any, frames: list[Any]) -> dict[Any, Any]:
            if type(value) is not dict:
                raise InvalidMessage(f"expected map, got {type(value).__name__}")
            out = {}
            for k, v in value.items():
                if type(k) is not str:
                    raise InvalidMessage("map keys must be strings")
                out[k] = item(v, frames)
            return out
        return check_map
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        pairs = [(_wire_kinds(a), converter(a)) for a in options]
        nullable = len(options) != len(args)
        # Only the options whose wire kind fits are tried: a failed try costs an exception,
        # and messages like compute-task hold a ``str | Payload`` for every task.
        by_type: dict[type, list[Converter]] = {}

        def check_union(value: Any, frames: list[Any]) -> Any:
            if value is None and nullable:
                return None
            candidates = by_type.get(type(value))
            if candidates is None:
                candidates = [conv for kinds, conv in pairs if isinstance(value, kinds)]
                if len(by_type) < 64:
                    by_type[type(value)] = candidates
            for conv in candidates:
                try:
                    return conv(value, frames)
                except InvalidMessage:
                    if len(candidates) == 1:
                        raise
            raise InvalidMessage(f"expected {type_name(tp)}, got {type(value).__name__}")
        return check_union
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return record_converter(tp)
    raise TypeError(f"no wire type for {tp!r}")


def encoder(tp: Any) -> Encoder | None:
    """An encoder for values of ``tp``, or None when the value goes on the wire as it is."""
    if tp is Payload:
        return payload_ref
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is list:
        each = encoder(args[0])
        if each is None:
            return None
        return lambda v, f, s: [each(x, f, s) for x in v]
    if origin is dict:
        value = encoder(args[1])
        if value is None:
            return None
        return lambda v, f, s: {k: value(x, f, s) for k, x in v.items()}
    if origin in (Union, types.UnionType):
        if Payload in args:
            return lambda v, f, s: payload_ref(v, f, s) if isinstance(v, Payload) else v
        records = [a for a in args if isinstance(a, type) and dataclasses.is_dataclass(a)]
        if len(records) == 1:  # an optional record
            record, encode_record = records[0], record_encoder(records[0])
            return lambda v, f, s: encode_record(v, f, s) if isinstance(v, record) else v
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return record_encoder(tp)
    return None


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool
    convert: Converter
    encode: Encoder | None
    default: Any
    since: int = 1
    feature: str | None = None
    minimum: float | None = None
    values: tuple[str, ...] | None = None
    length: int | None = None

    def describe(self) -> dict[str, Any]:
        """The field as spec/schema/messages.json states it."""
        out: dict[str, Any] = {"type": self.type, "required": self.required, "since": self.since}
        if not self.required:
            default = self.default() if callable(self.default) else self.default
            if default is not None:
                out["default"] = default
        if self.feature is not None:
            out["feature"] = self.feature
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.values is not None:
            out["values"] = list(self.values)
        if self.length is not None:
            out["length"] = self.length
        return out


def wire_field(default: Any = dataclasses.MISSING, *, default_factory: Any = None,
               since: int = 1, feature: str | None = None, minimum: float | None = None,
               values: tuple[str, ...] | None = None, length: int | None = None,
               shared: bool = False) -> Any:
    """A message field with protocol metadata: the version that added it (``since``), the
    feature it belongs to, which the field is only sent under (see ``features``), and the
    least value its numbers may have (``minimum``; floats must then be finite too), which
    applies to each item of a list or map). ``values`` (the strings the field is defined for)
    and ``length`` (of a bin) are not checked when decoding: the handshake and the ops'
    handlers enforce them, with their own error codes (PROTOCOL.md, Message encoding).
    ``shared``: a string that nearly every message repeats (a pickle tag): the generated
    decoder gives every message the one interned string instead of a copy read per message."""
    metadata = {"since": since, "feature": feature, "minimum": minimum, "values": values,
                "length": length, "shared": shared}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def bounded(convert: Converter, minimum: float) -> Converter:
    """``convert``, then every number in the result (items of lists and maps too) checked to
    be finite and at least ``minimum``: NaN resources or a negative size are nonsense that a
    receiver would otherwise act on."""
    def check(value: Any) -> None:
        kind = type(value)
        if kind is dict:
            for item in value.values():
                check(item)
        elif kind is list:
            for item in value:
                check(item)
        elif kind is float or kind is int:
            if not math.isfinite(value) or value < minimum:
                raise InvalidMessage(f"{value!r} is not a finite number >= {minimum:g}")

    def convert_bounded(value: Any, frames: list[Any]) -> Any:
        out = convert(value, frames)
        check(out)
        return out
    return convert_bounded


def field_hints(cls: type, names: list[str]) -> dict[str, Any]:
    """The evaluated annotations of these fields, as ``typing.get_type_hints`` gives them, but
    only theirs: ``get_type_hints`` evaluates every annotation of every base class too (the
    message base's eight), and once per message class that was most of importing the
    catalogue. Names resolve as there: the class's namespace, then its module's, then builtins.
    """
    hints: dict[str, Any] = {}
    for base in cls.__mro__:
        annotations = base.__dict__.get("__annotations__", {})
        module = sys.modules[base.__module__].__dict__
        for name in names:
            if name in annotations and name not in hints:
                tp = annotations[name]
                hints[name] = eval(tp, module, dict(vars(base))) if isinstance(tp, str) else tp
    return hints


def field_specs(cls: type) -> list[FieldSpec]:
    fields = [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    hints = field_hints(cls, [f.name for f in fields])
    specs = []
    for f in fields:
        tp = hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory
        minimum = f.metadata.get("minimum")
        convert = converter(tp) if minimum is None else bounded(converter(tp), minimum)
        specs.append(FieldSpec(f.name, type_name(tp), required, convert, encoder(tp), default,
                               f.metadata.get("since", 1), f.metadata.get("feature"), minimum,
                               f.metadata.get("values"), f.metadata.get("length")))
    return specs


def record_converter(cls: type) -> Converter:
    specs = None

    def convert(value: Any, frames: list[Any]) -> Any:
        nonlocal specs
        if type(value) is cls:  # (read already by the generated decoder: see codegen._list)
            return value
        if specs is None:
            specs = field_specs(cls)
        if type(value) is not dict:
            raise InvalidMessage(f"{cls.__name__} must be a map, got {type(value).__name__}")
        kwargs = {}
        for spec in specs:
            raw = value.get(spec.name, _MISSING)
            if raw is _MISSING or (raw is None and not spec.required):
                if spec.required:
                    raise InvalidMessage(f"{cls.__name__}: missing field {spec.name!r}")
                continue
            try:
                kwargs[spec.name] = spec.convert(raw, frames)
            except InvalidMessage as exc:
                raise type(exc)(f"{cls.__name__}.{spec.name}: {exc.message}", exc.code) from None
        return cls(**kwargs)
    return convert


def record_encoder(cls: type) -> Encoder:
    specs = None

    def encode(value: Any, frames: list[Any], seen: dict[Any, Any]) -> dict[Any, Any]:
        nonlocal specs
        if specs is None:
            specs = field_specs(cls)
        out = {}
        for spec in specs:
            v = getattr(value, spec.name)
            if v is None and not spec.required:
                continue
            out[spec.name] = v if spec.encode is None else spec.encode(v, frames, seen)
        return out
    return encode


_MISSING = object()
