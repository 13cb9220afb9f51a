"""Frozen slots dataclasses whose methods were generated ahead of time.

``dataclass(frozen=True, slots=True)`` writes the source of eight methods per class and
compiles it every time a program starts: for the message catalogue and the state machines'
events, the largest part of importing them. ``frozen_record(generated)`` makes the same class
from methods generated into a module of their own (``python -m dist_protocol.records_source``,
checked by ``--check``), whose bytecode Python caches like any other: ``dataclasses`` is left
only its bookkeeping (the fields, ``__match_args__``, the slots).

The classes are the ones ``dataclass`` makes: the same fields, signature, ``repr``, equality,
hash, pickled state and frozen errors (the tests compare the two field by field and value by
value). The ``__init__`` fills a new instance in as one of a twin class with the same slots
and no frozen ``__setattr__``, then gives it its own class (records of four fields or more;
those of fewer set each slot through its own descriptor), instead of ``object.__setattr__``
by name. ``builder(cls)`` makes such a record with one change of class, not two, for the
few a process makes once or more a task. A class whose declaration no longer matches what
was generated (its fingerprint: every annotation and default) gets ``dataclass``'s methods
as before: an out-of-date module costs time, never correctness.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:
    from typing_extensions import dataclass_transform

# The methods a generated module's factory returns, in this order.
METHOD_NAMES = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__",
                "__getstate__", "__setstate__")
# Set to make every class with ``dataclass`` alone: what the generator reads.
REFERENCE_ENV = "DIST_RECORDS_REFERENCE"
_REFERENCE = os.environ.get(REFERENCE_ENV, "") not in ("", "0")
# The factories generated code may call by name for a ``default_factory``.
FACTORIES: dict[Any, str] = {list: "[]", dict: "{}", set: "set()"}


class _Factory:
    """The default of a parameter whose value is made per instance (as ``dataclasses`` shows
    it in a signature)."""

    def __repr__(self) -> str:
        return "<factory>"


FACTORY = _Factory()


@dataclasses.dataclass(frozen=True, slots=True)
class _Parameters:
    """A class with the parameters of every record, to lend them its ``__dataclass_params__``."""


PARAMETERS = vars(_Parameters)["__dataclass_params__"]


# What each class was declared as, and whether it had a docstring: for the generator.
DECLARATIONS: dict[type, tuple[tuple[Any, ...], bool]] = {}
# The generated builders of the records that have one (see ``builder``).
BUILDERS: dict[Any, Callable[..., Any]] = {}
# A generated module's table: class qualname -> (fingerprint, docstring or None, factory).
Generated = Mapping[str, tuple[tuple[Any, ...], "str | None", Callable[[type], tuple[Any, ...]]]]
C = TypeVar("C", bound=type)
P = ParamSpec("P")
R = TypeVar("R")


def literal(value: Any) -> str | None:
    """``value``'s source text if generated code can hold it as a literal, else None."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return repr(value)
    if kind is float and math.isfinite(value):
        return repr(value)
    if kind is frozenset and not value:  # immutable: an equal one serves as well
        return "frozenset()"
    return None


class _Unrepresentable(Exception):
    """A default generated code cannot hold: the class is left to ``dataclass``."""


def _default(value: Any) -> Any:
    """What a fingerprint records of a class attribute's value (or a field's default)."""
    if value is dataclasses.MISSING:
        return "-"
    if isinstance(value, dataclasses.Field):
        factory = value.default_factory
        if factory is not dataclasses.MISSING and factory not in FACTORIES:
            raise _Unrepresentable
        return ("field", _default(value.default),
                "-" if factory is dataclasses.MISSING else FACTORIES[factory],
                value.init, value.repr, value.compare, value.hash, value.kw_only is True)
    text = literal(value)
    if text is None:
        raise _Unrepresentable
    return text


def fingerprint(cls: type) -> tuple[Any, ...] | None:
    """Every annotation of ``cls``'s own body with its default, as declared (before
    ``dataclass`` sees it); None if generated code cannot hold one."""
    namespace = cls.__dict__
    items = []
    try:
        for name, annotation in namespace.get("__annotations__", {}).items():
            if not isinstance(annotation, str):
                return None
            items.append((name, annotation, _default(namespace.get(name, dataclasses.MISSING))))
    except _Unrepresentable:
        return None
    return tuple(items)


def _generatable(cls: type) -> bool:
    """No base with fields, no method of its own that a generated one would replace."""
    namespace = cls.__dict__
    return (all("__dataclass_fields__" not in base.__dict__ for base in cls.__mro__[1:])
            and not any(name in namespace for name in METHOD_NAMES)
            and "__post_init__" not in namespace and "__slots__" not in namespace)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen_record(generated: Generated,
                  fallback: Callable[[type], None] | None = None) -> Callable[[C], C]:
    """A decorator: ``dataclass(frozen=True, slots=True)``, with the methods ``generated``
    holds for the class where they match its declaration (``fallback`` is called with a
    class whose methods ``dataclass`` made)."""
    def decorate(cls: C) -> C:
        declared = fingerprint(cls) if _generatable(cls) else None
        entry = None if _REFERENCE or declared is None else generated.get(cls.__qualname__)
        had_doc = cls.__doc__ is not None
        if entry is None or entry[0] != declared or (entry[1] is None) != had_doc:
            made: Any = dataclasses.dataclass(frozen=True, slots=True)(cls)
            if declared is not None:
                DECLARATIONS[made] = (declared, had_doc)
            if fallback is not None:
                fallback(made)
            return typing.cast(C, made)
        _, doc, factory = entry
        if doc is not None:
            cls.__doc__ = doc  # (else dataclass would compute it from the signature)
        made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
        made.__dataclass_params__ = PARAMETERS
        qualname, module = made.__qualname__, made.__module__
        methods = factory(made)
        for name, method in zip(METHOD_NAMES, methods):
            method.__qualname__ = f"{qualname}.{name}"
            method.__module__ = module
            setattr(made, name, method)
        if len(methods) > len(METHOD_NAMES) and methods[-1] is not made:
            build = methods[-1]
            build.__qualname__ = f"{qualname}.<built>"
            build.__module__ = module
            BUILDERS[made] = build
        DECLARATIONS[made] = (declared, had_doc)
        return typing.cast(C, made)
    return decorate


def builder(cls: Callable[P, R]) -> Callable[P, R]:
    """What makes an instance of the record class ``cls`` from the same arguments as
    ``cls(...)``, as equal, as frozen and of the same class, for the few records a process
    makes once or more a task (the center's ``compute-task`` and ``key-in-memory``, the
    event of each message a peer sends): for a generated record of two fields or more, a
    function that fills the instance in as one of its twin class and changes its class once,
    where ``__init__``, called on an instance made as ``cls``'s, changes it twice or sets
    each slot through its descriptor (measured under callgrind: 3,100 instructions against
    5,200 for a ``compute-task``, 2,270 against 3,930 for a ``WorkerSent``). Any other class
    is its own builder."""
    return typing.cast("Callable[P, R]", BUILDERS.get(cls, cls))


__all__ = ["BUILDERS", "DECLARATIONS", "FACTORY", "METHOD_NAMES", "REFERENCE_ENV", "builder",
           "fingerprint", "frozen_record", "literal"]
