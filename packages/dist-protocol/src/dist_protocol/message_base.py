"""What every wire op's class is made of: the ``Message`` base, the ``@message`` and ``@record``
decorators that register and generate them, and ``downgrade``. The catalogue of ops itself is
``messages``; the batch codec that frames them is ``batches``. No I/O.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import field
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:
    from typing_extensions import dataclass_transform

from . import codegen
from .generated_messages import METHODS
from .records import frozen_record
from .wiretypes import FieldSpec, field_specs, wire_field

OPS: dict[str, type[Message]] = {}


class _FieldSpecs:
    """A message class's ``fields``, made when first read: evaluating every field's type for
    every class was a third of what importing the catalogue cost, for the spec tools and tests
    alone (the codec reads ``field_specs`` when it generates its functions)."""

    def __get__(self, obj: Any, cls: type) -> list[FieldSpec]:
        specs = field_specs(cls)
        type.__setattr__(cls, "fields", specs)  # read from the class from now on
        return specs


class Message:
    """Base of every message class; subclasses are registered by ``op``."""

    op: ClassVar[str]
    direction: ClassVar[tuple[str, ...]]  # "sender->receiver" pairs
    since: ClassVar[int] = 1
    feature: ClassVar[str | None] = None  # the op may only be sent where this was agreed
    # (field name, default, feature) of the fields that belong to a feature
    gated_fields: ClassVar[tuple[tuple[str, Any, str], ...]] = ()
    # Whether the message may need a feature (its op's, a field's, a field of its records'):
    # only those are checked against a connection's agreed features.
    feature_checked: ClassVar[bool] = False
    # The features of the fields of its records (a submit's tasks'), for ``features_possible``.
    record_features: ClassVar[frozenset[str]] = frozenset()
    fields: ClassVar[_FieldSpecs] = _FieldSpecs()
    _decode: ClassVar[Any]
    _encode: ClassVar[Any]

    def to_wire(self, frames: list[Any], seen: dict[Any, Any] | None = None) -> dict[Any, Any]:
        """The msgpack map for this message; payload frames are appended to ``frames``."""
        out: dict[Any, Any] = type(self)._encode(self, frames, {} if seen is None else seen)
        return out

    @classmethod
    def from_wire(cls, value: dict[Any, Any], frames: list[Any]) -> Message:
        decoded: Message = cls._decode(value, frames)
        return decoded

    @classmethod
    def features_possible(cls) -> frozenset[str]:
        """Every feature a message of this type may need: where all are agreed, a connection
        need not ask each message's ``features_used``."""
        own = {cls.feature} if cls.feature else set()
        return frozenset(own | {feature for _, _, feature in cls.gated_fields}
                         | cls.record_features)

    def features_used(self) -> set[str]:
        """The features this message needs agreed on its connection (see ``features``)."""
        cls = type(self)
        used = {cls.feature} if cls.feature else set()
        for name, default, feature in cls.gated_fields:
            value = getattr(self, name)
            if value != (default() if callable(default) else default):
                used.add(feature)
        return used


M = TypeVar("M", bound=type)


@dataclass_transform(frozen_default=True, field_specifiers=(field, wire_field))
def record(cls: M) -> M:
    """A frozen slots dataclass, its methods generated ahead of time (``records``); those
    ``dataclass`` makes get ``codegen``'s ``__init__``."""
    return frozen_record(METHODS, fallback=codegen.install_initializer)(cls)


@dataclass_transform(frozen_default=True, field_specifiers=(field, wire_field))
def message(op: str, *direction: str, since: int = 1,
            feature: str | None = None) -> Callable[[M], M]:
    """Register a message class: a frozen dataclass whose annotations are its wire fields."""
    def register(cls: Any) -> Any:
        cls = record(cls)
        cls.op, cls.direction, cls.since, cls.feature = op, direction, since, feature
        cls.gated_fields = tuple(
            (f.name, f.default if f.default_factory is dataclasses.MISSING else f.default_factory,
             f.metadata["feature"]) for f in dataclasses.fields(cls)
            if f.metadata.get("feature") is not None and not f.name.startswith("_"))
        cls.feature_checked = cls.feature_checked or bool(feature or cls.gated_fields)
        # Generated on first use: most processes use a few of the ops, and importing the
        # catalogue stays cheap.
        cls._decode = _on_first_use(cls, "_decode", lambda: codegen.decoder(cls))
        cls._encode = _on_first_use(cls, "_encode", lambda: codegen.encoder(cls, op))
        OPS[op] = cls
        return cls
    return register


def _on_first_use(cls: type, name: str, make: Callable[[], Any]) -> Any:
    """A static method that replaces itself, the first time it is called, with ``make()``."""
    def first_use(*args: Any) -> Any:
        made = make()
        setattr(cls, name, staticmethod(made))
        return made(*args)
    return staticmethod(first_use)


def downgrade(msg: Message, features: frozenset[str] | set[str]) -> Message:
    """``msg`` without the optional fields of features not in ``features`` (back to their
    defaults), for a sender that can do without them -- a task-erred without its pickled
    exception for a client that cannot read one. An op of such a feature cannot be
    downgraded: ``send`` refuses it."""
    cls = type(msg)
    try:
        dropped = _DROPPED[cls, features]  # type: ignore[index]
    except (KeyError, TypeError):  # (TypeError: a mutable set, which is not remembered)
        dropped = tuple((name, default) for name, default, feature in cls.gated_fields
                        if feature not in features)
        if type(features) is frozenset:
            _DROPPED[cls, features] = dropped
    if not dropped:
        return msg
    changes = {name: (default() if callable(default) else default) for name, default in dropped}
    return dataclasses.replace(msg, **changes)  # type: ignore[type-var]


# (message class, a connection's agreed features) -> the gated fields it drops: sent with every
# message of a type with gated fields (a center's key-in-memory, a worker's task-finished), and
# nearly always nothing. A few entries: one per type and kind of peer.
_DROPPED: dict[tuple[type, frozenset[str]], tuple[tuple[str, Any], ...]] = {}
