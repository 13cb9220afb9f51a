"""The token of a function that travels by value (defined in ``__main__``, a lambda, a
function defined inside another): what it is made of, each part normalized as arguments
are, rather than its pickle.

cloudpickle writes such a function with the globals it reads, its closure and its
constants as they are, and a set's order (a global ``set``, a ``frozenset`` constant such as
``x in {"a", "b"}``, a dict of sets) follows the strings' hashes, which ``PYTHONHASHSEED``
makes differ from one process to the next. Two processes making the same call would name
it by two keys, and compute it twice. Here the function is its code (the bytecode, names and
constants, nested functions' code too), its defaults, the values of its closure and of the
globals its code names, each normalized by the caller's ``normalize`` (sets and dicts in a
fixed order); where it is defined and where its lines are do not count.
"""
from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

from .script_module import SCRIPT_MODULES

Normalize = Callable[[Any], Any]

_active = threading.local()  # the functions being normalized in this thread, by id


def travels_by_value(func: Any) -> bool:
    """Whether cloudpickle sends ``func`` by value: a Python function the workers cannot
    import by its name."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", "")
    return module is None or module in SCRIPT_MODULES or "<" in qualname


def function_parts(func: types.FunctionType, normalize: Normalize) -> tuple:
    """``func`` as a tuple equal in every process for equal code and values."""
    active = getattr(_active, "ids", None)
    if active is None:
        active = _active.ids = set()
    if id(func) in active:  # a function that calls itself, or two that call each other
        return ("function-again", func.__qualname__)
    active.add(id(func))
    try:
        code = func.__code__
        found = func.__globals__
        read = tuple((name, normalize(found[name])) for name in sorted(global_names(code))
                     if name in found)
        closure = tuple(_cell(cell, normalize) for cell in func.__closure__ or ())
        return ("function", func.__qualname__, code_parts(code, normalize),
                normalize(func.__defaults__), normalize(func.__kwdefaults__), closure, read)
    finally:
        active.discard(id(func))


def _cell(cell: Any, normalize: Normalize) -> Any:
    try:
        contents = cell.cell_contents
    except ValueError:  # a cell not yet filled (a closure over a name assigned later)
        return ("empty-cell",)
    return normalize(contents)


def code_parts(code: types.CodeType, normalize: Normalize) -> tuple:
    consts = tuple(code_parts(c, normalize) if isinstance(c, types.CodeType) else normalize(c)
                   for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars,
            code.co_cellvars, code.co_argcount, code.co_posonlyargcount,
            code.co_kwonlyargcount, code.co_flags)


def global_names(code: types.CodeType) -> set[str]:
    """The names ``code`` and the code of the functions defined in it may read as globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


__all__ = ["function_parts", "travels_by_value"]
