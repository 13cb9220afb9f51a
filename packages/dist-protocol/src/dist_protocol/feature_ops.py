"""The ops of two optional features: coordination primitives (client -> center -> client)
and actor calls (caller -> the worker hosting the actor). No I/O.
"""
from __future__ import annotations

from dataclasses import field

from .message_base import Message, message
from .serialize import Payload
from .wiretypes import wire_field


# -- coordination primitives: client -> center -> client ---------------------------------------

PRIMITIVE_KINDS = ("queue", "variable", "lock", "semaphore", "event", "topic", "log",
                   "multi-lock")


@message("coordinate", "client->center", feature="coordination")
class Coordinate(Message):
    """An action on a named primitive held by the center (see the spec's table of actions).
    Waiting actions are answered when they can be done, or with status ``timeout``."""

    id: int
    kind: str = wire_field(values=PRIMITIVE_KINDS)
    name: str
    action: str
    value: Payload | None = None  # what is put, set or published
    keys: list[str] = field(default_factory=list)  # keys the value refers to: held meanwhile
    timeout: float | None = wire_field(default=None, minimum=0)  # None: wait until done
    limit: int | None = wire_field(default=None, minimum=0)  # queue maxsize, semaphore leases
    lease: str | None = None  # lock/semaphore: the holder's name for its lease
    # pickle tag ("cpython-3.11") of the Python that pickled ``value``, kept with it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")
    # a multi-lock's acquire: the locks it asks for (``limit``: how many of them it needs)
    names: list[str] = wire_field(default_factory=list, feature="multi-lock")


@message("coordinate-reply", "center->client", feature="coordination")
class CoordinateReply(Message):
    id: int
    status: str = wire_field(values=("ok", "timeout", "error"))
    value: Payload | None = None  # what was got
    keys: list[str] = field(default_factory=list)  # keys it refers to: now wanted by the asker
    count: int | None = None  # queue size, leases held, 1/0 for an event set or not
    error: str = ""  # with status error: what was wrong
    # pickle tag of the Python that pickled ``value``, as whoever put it stated it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")
    # an event log's entries, oldest first (``read``), or its topics' names (``topics``)
    values: list[Payload] = wire_field(default_factory=list, feature="event-log")


@message("published", "center->client", feature="coordination")
class Published(Message):
    """A message on a topic the client subscribed to: a ``topic``'s or a ``log``'s."""

    topic: str
    value: Payload
    # pickle tag of the Python that pickled ``value``, as its publisher stated it
    pickled_with: str | None = wire_field(default=None, feature="pickled-values")
    kind: str | None = wire_field(default=None, values=("log",), feature="event-log")  # None: topic


# -- actors: caller -> hosting worker --------------------------------------------------------

@message("actor-call", "client->worker", feature="actors")
class ActorCall(Message):
    """Call a method of the actor ``key`` (``args``: ``[args, kwargs]``), or read its
    attribute ``name`` when ``args`` is absent. Calls on one connection run in order."""

    id: int
    key: str
    name: str
    args: Payload | None = None
    # what the caller can read, in order of preference (absent: pickle)
    serializers: list[str] | None = wire_field(default=None, feature="actor-serializers")


@message("actor-result", "worker->client", feature="actors")
class ActorResult(Message):
    id: int
    status: str = wire_field(values=("ok", "error", "lost"))
    value: Payload | None = None
    exception_type: str = ""
    message: str = ""
    traceback: str = ""
    # the exception pickled, for Python callers
    exception: Payload | None = wire_field(default=None, feature="pickled-exceptions")
