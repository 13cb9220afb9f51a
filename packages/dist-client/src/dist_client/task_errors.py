"""A failed task's exception as the client raises it, from the worker's ``task-erred``."""
from __future__ import annotations

import functools
import sys

from dist_protocol.environment import describe, describe_tag, local_environment, pickle_tag
from dist_protocol.messages import TaskErred
from dist_protocol.serialize import CodeRefused, SerializationError, deserialize

from . import remote_traceback
from .errors import KilledWorker, RemoteError


def exception_from(msg: TaskErred) -> BaseException:
    """The exception ``result()`` raises for a failed task: the task's own (type kept), with
    what the worker was doing and its traceback as notes (on Python 3.10 its traceback too, as
    the worker's frames); a ``RemoteError`` naming the type and saying why where it cannot be
    rebuilt here."""
    exc: BaseException | None = None
    why = ""
    if msg.exception is not None:
        # Pickled by another Python minor version (a dataset's future, read here): its data
        # reads as usual, but code in it (a class's methods, a lambda in its args, pickled by
        # value) is that version's bytecode, which can crash this process if built here.
        made_by = msg.pickled_with
        try:
            exc = deserialize(msg.exception, code=made_by is None or made_by == _own_tag())
        except CodeRefused:
            assert made_by is not None
            exc = None
            why = (f" (it was pickled on {describe_tag(made_by)} and holds Python "
                   f"code, which this client, on {describe(local_environment())}, does not "
                   f"build: bytecode differs between Python versions)")
        except SerializationError as error:
            exc = None
            why = f" (it could not be rebuilt here: {error})"
    if not isinstance(exc, BaseException):
        if msg.exception_type == "KilledWorker":
            return KilledWorker(msg.message)
        exc = RemoteError(msg.exception_type, msg.message + why, msg.traceback)
    elif msg.message and msg.message != _text(exc):
        # The worker said what it was doing when this was raised: loading the task's
        # function or arguments, or serializing its result, rather than running it.
        add_note(exc, msg.message)
    if msg.traceback:
        add_note(exc, f"Traceback on the worker:\n{msg.traceback.rstrip()}")
        if sys.version_info < (3, 11):
            # Python 3.10 prints no notes (tools that backport them do, pytest among them):
            # the worker's frames, ending where it was raised, follow the client's instead.
            exc = exc.with_traceback(remote_traceback.build(msg.traceback))
    return exc


@functools.cache
def _own_tag() -> str:
    return pickle_tag(local_environment())  # (asked when an error arrives, not at import)


def _text(exc: BaseException) -> str | None:
    """``str(exc)``, or None when the exception's own ``__str__`` fails: user code, which must
    not take down the connection that delivered its error."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 -- any error of the user's class
        return None


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``; on Python 3.10 the same ``__notes__`` list it would make."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
        return
    notes = getattr(exc, "__notes__", None)
    if notes is None:
        notes = []
        setattr(exc, "__notes__", notes)  # noqa: B010 -- a 3.11 attribute, unknown to 3.10
    if not isinstance(notes, list):
        raise TypeError("Cannot add note: __notes__ is not a list")
    notes.append(note)


__all__ = ["add_note", "exception_from"]
