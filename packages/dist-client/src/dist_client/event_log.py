"""dask's event log: ``log_event(topic, msg)``, ``get_events(topic)``,
``subscribe_topic(topic, handler)``. Each topic is an event log the center keeps (a
coordination primitive of kind ``log``, PROTOCOL.md), bounded to its newest entries.

An event is ``(timestamp, msg)``: the time is taken here, where the event happens (the
center keeps no clock), and ``msg`` travels as msgpack, as dask asks of event messages: any
client reads them, and no code travels through a log. Handlers run in this client's
process, one event at a time, in the order the center sent them, on a thread of their own:
a handler that blocks, or that uses the executor, never holds up the connection.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from dist_protocol.errors import CommClosedError
from dist_protocol.messages import Coordinate, CoordinateReply, Published
from dist_protocol.serialize import SerializationError, deserialize, serialize

from .errors import ClusterError

log = logging.getLogger(__name__)


def topics_of(topic: str | Iterable[str]) -> list[str]:
    names = [topic] if isinstance(topic, str) else list(topic)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"an event's topic is a non-empty string, not {name!r}")
    return names


def entry(payload: Any) -> tuple[float, Any]:
    stamp, msg = deserialize(payload)
    return (stamp, msg)


async def _ask(core: Any, make: Callable[[int], Coordinate]) -> CoordinateReply:
    center = core.center
    if center is not None and "event-log" not in center.features:
        raise ClusterError(f"the center at {core.address} keeps no event log (an older "
                           "release: it did not announce the protocol feature 'event-log')")
    reply = await core.ask(make)
    if reply.status == "error":
        raise ValueError(reply.error)
    return reply


async def log_event(core: Any, topic: str | Iterable[str], msg: Any) -> None:
    names = topics_of(topic)
    try:
        payload = serialize([time.time(), msg], ("msgpack",))
    except SerializationError as exc:
        raise TypeError(f"an event's message must be msgpack serializable, as dask's are (so "
                        f"that any client reads it): {exc}") from None
    for name in names:
        await _ask(core, _appending(name, payload))


def _appending(name: str, payload: Any) -> Callable[[int], Coordinate]:
    return lambda i: Coordinate(id=i, kind="log", name=name, action="append", value=payload)


async def get_events(core: Any, topic: str | None = None) -> Any:
    """The events of ``topic``, oldest first, as a tuple; without a topic, a dict of every
    topic's."""
    if topic is not None:
        reply = await _ask(core, lambda i: Coordinate(id=i, kind="log", name=topics_of(topic)[0],
                                                      action="read"))
        return tuple(entry(value) for value in reply.values)
    reply = await _ask(core, lambda i: Coordinate(id=i, kind="log", name="*", action="topics"))
    names = deserialize(reply.value) if reply.value is not None else []
    return {name: await get_events(core, name) for name in names}


async def subscribe(core: Any, topic: str, handler: Callable[[tuple[float, Any]], Any]) -> None:
    if not callable(handler):
        raise TypeError(f"subscribe_topic needs a callable handler, not {handler!r}")
    name = topics_of(topic)[0]
    first = core.event_handlers.add(name, handler)
    if first:
        try:
            await _ask(core, lambda i: Coordinate(id=i, kind="log", name=name,
                                                  action="subscribe"))
        except BaseException:
            core.event_handlers.remove(name)
            raise


async def renew_subscriptions(core: Any) -> None:
    """On a new connection to the center (after losing the last): subscribe again to every
    topic this client has handlers of, and every pub/sub topic it has a ``Sub`` of. A center
    forgets a client's subscriptions with its connection (and a restarted one knew nothing of
    them), while the handlers here stay; events logged while the connection was down are not
    delivered, as they would not be in dask (``get_events`` reads them). Raises
    ``CommClosedError`` or ``ClusterError`` if the connection goes meanwhile."""
    center = core.center
    if center is None:
        return
    kinds = [("topic", name) for name in core.topics.names()]
    if "event-log" in center.features:
        kinds += [("log", name) for name in core.event_handlers.topics()]
    outcomes = await asyncio.gather(*(core.ask(_subscribing(kind, name)) for kind, name in kinds),
                                    return_exceptions=True)
    for (_, name), outcome in zip(kinds, outcomes):
        if isinstance(outcome, (CommClosedError, ClusterError, TimeoutError)):
            raise outcome  # the connection went meanwhile: the next one subscribes again
        if isinstance(outcome, BaseException):
            log.warning("could not subscribe again to topic %r after reconnecting: %s",
                        name, outcome)


def _subscribing(kind: str, name: str) -> Callable[[int], Coordinate]:
    return lambda i: Coordinate(id=i, kind=kind, name=name, action="subscribe")


async def unsubscribe(core: Any, topic: str) -> None:
    name = topics_of(topic)[0]
    if core.event_handlers.remove(name):
        await _ask(core, lambda i: Coordinate(id=i, kind="log", name=name,
                                              action="unsubscribe"))


class EventHandlers:
    """The handler of each topic this client subscribed to, and the one thread they run on
    (made at the first event)."""

    def __init__(self, loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self._loop = loop  # the client's I/O loop, which awaits handlers that are coroutines
        self._handlers: dict[str, Callable[[tuple[float, Any]], Any]] = {}
        self._lock = threading.Lock()
        self._runner: concurrent.futures.ThreadPoolExecutor | None = None

    def add(self, topic: str, handler: Callable[[tuple[float, Any]], Any]) -> bool:
        """Whether the topic is new here (the center is to be told); a later handler of a
        topic replaces the earlier, as in dask."""
        with self._lock:
            new = topic not in self._handlers
            self._handlers[topic] = handler
            return new

    def remove(self, topic: str) -> bool:
        with self._lock:
            return self._handlers.pop(topic, None) is not None

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._handlers)

    def deliver(self, msg: Published) -> None:
        with self._lock:
            handler = self._handlers.get(msg.topic)
            if handler is None:
                return
            if self._runner is None:
                self._runner = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="dist-event-handlers")
            self._runner.submit(self._call, handler, msg)

    def _call(self, handler: Callable[[tuple[float, Any]], Any], msg: Published) -> None:
        try:
            result = handler(entry(msg.value))
            if inspect.isawaitable(result):
                asyncio.run_coroutine_threadsafe(_awaited(result), self._loop()).result()
        except Exception:  # a handler's error is its own: the next events still come
            log.exception("the handler of event topic %r raised", msg.topic)

    def close(self) -> None:
        with self._lock:
            self._handlers.clear()
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=False)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


__all__ = ["EventHandlers", "get_events", "log_event", "renew_subscriptions", "subscribe",
           "topics_of", "unsubscribe"]
