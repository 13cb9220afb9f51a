"""Turning a call into a task: the function's payload, the arguments' payload, the options.

Errors name what could not be pickled (the function, or which argument), and a large object
passed by value gets the hint dask gives: scatter it once and pass the future.
"""
from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from dist_protocol.messages import TaskSpec
from dist_protocol.records import builder
from dist_protocol.serialize import (BYTES_OUT_OF_BAND, Payload, SerializationError,
                                     bytes_out_of_band, dumps_function, holds_code,
                                     serialize, serialize_plain)

from .arguments import resource_amounts, whole_number, worker_names
from . import pickled_futures as travel
from .keys import funcname
from .packing import ATOMS, pack

# Arguments bigger than this travel with every task that names them; a scattered copy
# travels once (dask warns at 10 MB too).
LARGE_ARGUMENTS = 10 * 2**20
# How many options ``TaskBuilder.options`` gives: a task with no more is built positionally.
_PLAIN_OPTIONS = 5
# Made once a task of a map: built changing its class once, not twice (``records.builder``).
task_spec = builder(TaskSpec)


class TaskBuilder:
    """Payloads for tasks; a function's pickle is made once while the function lives."""

    def __init__(self) -> None:
        self._functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # The futures a function's pickle holds (a closure over a future), by function.
        self._futures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def function_payload(self, func: Any) -> Payload:
        try:
            payload = self._functions.get(func)
        except TypeError:  # not weak-referenceable (builtins): cheap to pickle by reference
            return _dump_function(func, None)
        if payload is None:
            pickled: list = []
            payload = self._functions[func] = _dump_function(func, pickled)
            if pickled:
                self._futures[func] = pickled
        return payload

    def futures_in_function(self, func: Any) -> list:
        """The futures pickled inside ``func``'s payload (made by ``function_payload``)."""
        try:
            return self._futures.get(func) or []
        except TypeError:
            return []

    @staticmethod
    def build(key: str, function: Payload, args: tuple, kwargs: dict, options: dict,
              func: Any = None, pickled_with: Any = None,
              pickled_futures: list | None = None,
              refuse_foreign: Callable[[Iterable[Any]], None] | None = None) -> TaskSpec:
        """``pickled_with`` (the client's environment tag) is stated on tasks whose function or
        arguments hold Python code (pickled by value), so that no worker on another Python
        builds it; a function pickled by reference with data arguments runs on any.
        ``pickled_futures`` gets the futures hidden inside arguments (pickled as futures).
        ``refuse_foreign`` raises for futures in the arguments that the cluster does not
        know (``foreign_futures.refuse``)."""
        deps: dict[str, Any] = {}
        payload = None
        code = function_holds_code(function)
        if args and not kwargs and type(args) is tuple:
            for value in args:  # (``pack``'s look at a tuple, without a call a task)
                kind = type(value)
                if kind not in ATOMS or kind is bytes and len(value) >= BYTES_OUT_OF_BAND:
                    break
            else:
                # Numbers, strings and bytes only (``pack`` would give the tuple back as
                # it is): most maps' calls, pickled at once.
                payload = serialize_plain((args, kwargs))
        if payload is None and (args or kwargs):
            packed = (_large_bytes_apart(pack(args, deps)),
                      _large_bytes_apart(pack(kwargs, deps)) if kwargs else kwargs)
            if deps and refuse_foreign is not None:
                refuse_foreign(deps.values())
            seen = travel.generation
            try:
                payload = serialize(packed)
                if travel.generation is not seen and pickled_futures is not None:
                    # A future was pickled meanwhile (here, or in another thread): which of
                    # them are in these arguments is learnt by pickling them again.
                    already = len(pickled_futures)
                    payload = _serialize_collecting(packed, pickled_futures)
                    if refuse_foreign is not None:
                        refuse_foreign(pickled_futures[already:])
            except SerializationError:
                raise _argument_error(func, args, kwargs) from None
            code = code or pickle_holds_code(payload)  # (plain arguments hold none)
        tag = pickled_with if code else None
        if len(options) == _PLAIN_OPTIONS:
            # The options every call has (``options``), and no others (an actor's, a pinned
            # task's): positionally, once per task of a map, a quarter cheaper than by
            # keyword (a test holds the order of the fields).
            return task_spec(key, function, payload, list(deps), options["priority"],
                             options["workers"], options["allow_other_workers"],
                             options["resources"], options["retries"], tag)
        return TaskSpec(key=key, function=function, args=payload, deps=list(deps),
                        pickled_with=tag, **options)

    @staticmethod
    def options(workers: Any = None, priority: int = 0, retries: int = 0,
                allow_other_workers: bool = False, resources: dict | None = None) -> dict:
        if (workers is None and resources is None and allow_other_workers is False
                and type(priority) is int and type(retries) is int
                and priority == 0 and retries == 0):
            # Most calls give none: nothing to check (a fresh dict, which actors extend).
            return {"workers": None, "priority": 0, "retries": 0,
                    "allow_other_workers": False, "resources": None}
        return {"workers": worker_names(workers), "priority": whole_number("priority", priority),
                "retries": whole_number("retries", retries, minimum=0),
                "allow_other_workers": bool(allow_other_workers),
                "resources": resource_amounts(resources)}


def _large_bytes_apart(values: Any) -> Any:
    """``values`` (the packed arguments or keywords) with each ``bytes`` argument of a
    megabyte or more to travel as a frame of its own: pickled in band, a 1 GiB argument was
    copied into the pickle on the client (2-5 s) and out of it again on the worker."""
    if type(values) is tuple:
        if any(type(v) is bytes and len(v) >= BYTES_OUT_OF_BAND for v in values):
            return tuple(bytes_out_of_band(v) if type(v) is bytes
                         and len(v) >= BYTES_OUT_OF_BAND else v for v in values)
    elif type(values) is dict:
        if any(type(v) is bytes and len(v) >= BYTES_OUT_OF_BAND for v in values.values()):
            return {k: bytes_out_of_band(v) if type(v) is bytes and len(v) >= BYTES_OUT_OF_BAND
                    else v for k, v in values.items()}
    return values


def _serialize_collecting(packed: tuple, pickled_futures: list) -> Payload:
    before = travel.collect(pickled_futures)
    try:
        return serialize(packed)
    finally:
        travel.collect(before)


_function_checked: list = [None, False]  # (a map's tasks share their function's frame)


def pickle_holds_code(payload: Payload) -> bool:
    """Whether a payload holds Python code: a function or a class pickled by value (by
    cloudpickle: defined in ``__main__``, a closure, a lambda), whose bytecode another Python
    minor version does not run. A function or class pickled by reference, and data, do not:
    they cross Pythons as dask's do. A pickle must spell out one of the names
    ``serialize.holds_code``'s reader refuses to build code: without any, it holds none, told
    without reading it."""
    if payload.serializer != "pickle" or not payload.frames:
        return False
    head = payload.frames[0]
    if isinstance(head, memoryview):
        head = head.tobytes()
    # (the names' look-ups written out: a map's task pays them)
    return (b"code" in head or b"CodeType" in head or b"marshal" in head) and holds_code(payload)


def function_holds_code(function: Payload) -> bool:
    """``pickle_holds_code`` of a function's payload, read once for the tasks of a map."""
    if _function_checked[0] is not function:
        _function_checked[:] = [function, pickle_holds_code(function)]
    return bool(_function_checked[1])


def _dump_function(func: Any, pickled_futures: list | None) -> Payload:
    before = travel.collect(pickled_futures)
    try:
        return dumps_function(func)
    except Exception as exc:  # reported with the function's name
        raise SerializationError(
            f"cannot pickle the function {_describe(func)} to send it to the workers: "
            f"{type(exc).__name__}: {exc} (a function that holds a lock, socket or open "
            "file cannot travel; create such things inside the task)") from exc
    finally:
        travel.collect(before)


def _describe(func: Any) -> str:
    name = getattr(func, "__qualname__", None) or funcname(func)
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else repr(name)


def _argument_error(func: Any, args: tuple, kwargs: dict) -> SerializationError:
    """Which argument of the call cannot be pickled, and why."""
    where = f"of {_describe(func)} " if func is not None else ""
    named = [(f"argument {i}", v) for i, v in enumerate(args)]
    named += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
    for label, value in named:
        try:
            serialize(pack(value, {}))
        except SerializationError as exc:
            return SerializationError(f"cannot pickle {label} {where}"
                                      f"({type(value).__name__}): {exc}")
    return SerializationError(f"cannot pickle the arguments {where}together")


def warn_if_large(func: Any, tasks: list[TaskSpec], stacklevel: int) -> None:
    """One warning per call that sends large arguments by value, naming ``scatter``."""
    largest = 0
    for task in tasks:
        if task.args is not None and task.args.nbytes > largest:
            largest = task.args.nbytes
    if largest > LARGE_ARGUMENTS:
        warnings.warn(
            f"the arguments of {funcname(func)} take {largest / 2**20:.1f} MiB, sent with "
            "every task that gets them: scatter large objects once, "
            "``future = executor.scatter(obj)``, and pass the future instead",
            UserWarning, stacklevel=stacklevel + 1)


__all__ = ["LARGE_ARGUMENTS", "TaskBuilder", "warn_if_large"]
