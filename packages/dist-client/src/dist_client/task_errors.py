"""A failed task's exception as the client raises it, from the worker's ``task-erred``."""
from __future__ import annotations

from dist_protocol.messages import TaskErred
from dist_protocol.serialize import SerializationError, deserialize

from .errors import KilledWorker, RemoteError


def exception_from(msg: TaskErred) -> BaseException:
    """The exception ``result()`` raises for a failed task: the task's own (type kept), with
    what the worker was doing and its traceback as notes; a ``RemoteError`` naming the type and
    saying why where it cannot be rebuilt here."""
    exc: BaseException | None = None
    why = ""
    if msg.exception is not None:
        try:
            exc = deserialize(msg.exception)
        except SerializationError as error:
            exc = None
            why = f" (it could not be rebuilt here: {error})"
    if not isinstance(exc, BaseException):
        if msg.exception_type == "KilledWorker":
            return KilledWorker(msg.message)
        exc = RemoteError(msg.exception_type, msg.message + why, msg.traceback)
    elif msg.message and msg.message != str(exc):
        # The worker said what it was doing when this was raised: loading the task's
        # function or arguments, or serializing its result, rather than running it.
        exc.add_note(msg.message)
    if msg.traceback and hasattr(exc, "add_note"):
        exc.add_note(f"Traceback on the worker:\n{msg.traceback.rstrip()}")
    return exc


__all__ = ["exception_from"]
