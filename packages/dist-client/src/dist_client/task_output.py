"""dask's ``print`` and ``warn`` for tasks: what a task prints or warns with them shows on the
clients too, not only in its worker's log.

Each is the builtin (so the worker's output has it as well) plus, in a task, an event on the
center's event log -- topic ``"print"`` or ``"warn"``, as dask's -- which every client
subscribed to it shows: an ``Executor`` subscribes to both as it starts, as dask's ``Client``
does, so a task's ``print`` appears where its user is looking. An event is msgpack (no code
travels through a log): the arguments travel as their ``str``, a warning as its text and
its category's import path, which the client turns back into the category if it imports
there (else ``UserWarning``).
"""
from __future__ import annotations

import asyncio
import builtins
import importlib
import sys
import warnings
from typing import Any

from dist_protocol import task_context

from . import event_log

PRINT_TOPIC = "print"
WARN_TOPIC = "warn"
_STREAMS = {1: "stdout", 2: "stderr"}


def print(*args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
          flush: bool = False) -> None:
    """The builtin ``print``; in a task, what it prints also shows on the clients (on their
    standard error when ``file`` is ``sys.stderr``, on their standard output otherwise)."""
    builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
    worker = _task_worker()
    if worker is None:
        return
    msg: dict[str, Any] = {"args": [str(arg) for arg in args],
                           "sep": " " if sep is None else str(sep),
                           "end": "\n" if end is None else str(end),
                           "file": 2 if file is sys.stderr else 1}
    worker.log_event(PRINT_TOPIC, msg)


def warn(message: Any, category: type[Warning] | None = UserWarning, stacklevel: int = 1,
         source: Any = None) -> None:
    """``warnings.warn``; in a task, the warning is also raised on the clients."""
    warnings.warn(message, category, stacklevel + 1, source)
    worker = _task_worker()
    if worker is None:
        return
    if isinstance(message, Warning):
        category, message = type(message), message.args[0] if message.args else ""
    kind = category or UserWarning
    worker.log_event(WARN_TOPIC, {"message": str(message),
                                  "category": f"{kind.__module__}:{kind.__qualname__}"})


def _task_worker() -> Any:
    context = task_context.current_or_process()
    return None if context is None else context.about_worker


def show_print(event: tuple[float, Any]) -> None:
    """A task's ``print``, printed here (the handler of topic ``"print"``)."""
    _, msg = event
    if not isinstance(msg, dict) or not isinstance(msg.get("args"), list):
        return  # an event of this topic that dask's print did not make
    stream = getattr(sys, _STREAMS.get(msg.get("file", 1), "stdout"))
    builtins.print(*msg["args"], sep=str(msg.get("sep", " ")), end=str(msg.get("end", "\n")),
                   file=stream, flush=True)


def show_warning(event: tuple[float, Any]) -> None:
    """A task's ``warn``, raised here (the handler of topic ``"warn"``)."""
    _, msg = event
    if not isinstance(msg, dict) or "message" not in msg:
        return
    # (stacklevel 1: the place is the task's, on a worker; the handler is all there is here)
    warnings.warn(str(msg["message"]), _category(str(msg.get("category", ""))), stacklevel=1)


def _category(path: str) -> type[Warning]:
    module_name, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError):  # a category not to be had here
        return UserWarning
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


HANDLERS = {PRINT_TOPIC: show_print, WARN_TOPIC: show_warning}


async def subscribe(core: Any) -> None:
    """As a client starts: show the tasks' prints and warnings here. Not for the executors
    of tasks (in a worker's process), whose output is the worker's, nor with a center that
    keeps no event log (an older release)."""
    center = core.center
    if (task_context.current_or_process() is not None or center is None
            or "event-log" not in center.features):
        return
    await asyncio.gather(*(event_log.subscribe(core, topic, handler)
                           for topic, handler in HANDLERS.items()))

__all__ = ["HANDLERS", "print", "subscribe", "warn"]
