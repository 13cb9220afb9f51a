"""dask's ``forward_logging``: the log records that tasks emit on the workers, re-emitted in
the client's process by the logger of the same name.

As in dask, through a worker plugin and the event log: the plugin (named
``forward-logging-<logger name or <root>>``) adds a handler to the logger on every worker,
present and future; the handler logs each record it handles to the topic
``forward-logging-<plugin name>`` as a plain dict of its attributes (the message formatted,
the traceback as text: an event is msgpack), and the client, subscribed to that topic,
rebuilds the record and hands it to ``logging.getLogger(record.name)``. Each record also
says which worker it came from (``record.worker``). Forwarding the same logger again
replaces the plugin: a record is forwarded once.

Only records emitted in a task (on its thread) are forwarded: the worker's own records, and
those of the executor that carries the events, would log events about logging events.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from dist_protocol import task_context

from . import event_log
from .core import plugins as plugin_ops
from .worker_functions import add_plugin, remove_plugin

TOPIC_PREFIX = "forward-logging"
_PLAIN = (str, int, float, bool, type(None))


def plugin_name(logger_name: str | None) -> str:
    return f"forward-logging-{logger_name or '<root>'}"


def topic_of(logger_name: str | None) -> str:
    return f"{TOPIC_PREFIX}-{plugin_name(logger_name)}"


def level_number(level: Any) -> int:
    """A logging level as ``logging`` takes one: a number, or a name such as ``"INFO"``."""
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown logging level {level!r}")
        return number
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"a logging level is a number or a name, not {level!r}")
    return level


async def start(core: Any, logger_name: str | None, level: Any) -> dict[str, str]:
    """Subscribe to the logger's topic here, then register the plugin on the workers
    (``{worker address: "OK"}``, as ``register_plugin``)."""
    if logger_name is not None and not isinstance(logger_name, str):
        raise TypeError(f"a logger's name is a string or None (the root), not {logger_name!r}")
    plugin = ForwardLoggingPlugin(logger_name, level_number(level), topic_of(logger_name))
    await event_log.subscribe(core, plugin.topic, re_emit)
    return await plugin_ops.register_plugin(core, plugin, plugin.name, False, add_plugin,
                                            remove_plugin)


async def stop(core: Any, logger_name: str | None) -> dict[str, str]:
    """Unsubscribe here and unregister the plugin (``ValueError`` if not forwarding)."""
    await event_log.unsubscribe(core, topic_of(logger_name))
    return await plugin_ops.unregister_plugin(core, plugin_name(logger_name), remove_plugin)


def re_emit(event: tuple[float, Any]) -> None:
    """The client's handler of a forwarding topic: the record, handled here by the logger of
    its name (its handlers, levels and filters decide what is shown)."""
    _, attributes = event
    if not isinstance(attributes, dict) or "name" not in attributes:
        return  # an event of this topic that a forwarding handler did not log
    record = logging.makeLogRecord(attributes)
    logging.getLogger(record.name).handle(record)


class ForwardLoggingPlugin:
    """The worker plugin: a ``ForwardingHandler`` on the logger, while registered."""

    def __init__(self, logger_name: str | None, level: int, topic: str) -> None:
        self.name = plugin_name(logger_name)
        self.logger_name = logger_name
        self.level = level
        self.topic = topic
        self.handler: ForwardingHandler | None = None

    def setup(self, worker: Any) -> None:
        self.handler = ForwardingHandler(worker, self.topic, self.level)
        logging.getLogger(self.logger_name).addHandler(self.handler)

    def teardown(self, worker: Any) -> None:
        if self.handler is not None:
            logging.getLogger(self.logger_name).removeHandler(self.handler)
            self.handler = None


class ForwardingHandler(logging.Handler):
    """Logs each record a task emits to ``topic`` of the center's event log."""

    def __init__(self, worker: Any, topic: str, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.worker = worker
        self.topic = topic
        self._inside = threading.local()  # logging the event may log: not forwarded again

    def emit(self, record: logging.LogRecord) -> None:
        if task_context.current() is None or getattr(self._inside, "active", False):
            return
        self._inside.active = True
        try:
            self.worker.log_event(self.topic, self.attributes(record))
        except Exception:  # noqa: BLE001 -- as any handler: the task goes on, logging says why
            self.handleError(record)
        finally:
            self._inside.active = False

    def attributes(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as msgpack can carry it (as ``logging.handlers.SocketHandler`` sends
        one): the message formatted, the traceback as text, other values as their ``str``."""
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        attributes = {name: value if isinstance(value, _PLAIN) else str(value)
                      for name, value in record.__dict__.items()
                      if name not in ("args", "exc_info", "message", "msg")}
        attributes.update(msg=record.getMessage(), args=None, exc_info=None,
                          worker=getattr(self.worker, "address", None))
        return attributes


__all__ = ["ForwardLoggingPlugin", "ForwardingHandler", "level_number", "plugin_name",
           "re_emit", "start", "stop", "topic_of"]
