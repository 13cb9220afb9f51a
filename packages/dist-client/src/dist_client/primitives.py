"""Coordination primitives held by the center: Queue, Variable, Lock, Semaphore, Event, and
pub/sub (Pub, Sub), as dask.distributed has them.

Each is a name on the center, which is the authority: two objects with the same name, in any
process of the cluster (a client, a task), are the same primitive. Every call is one
``coordinate`` request on the executor's connection; waiting calls are answered by the center
when they can be done, or when their ``timeout`` passes -- the client does not poll. Leases of
a Lock or Semaphore belong to the connection that took them: when that client closes or dies
(a task's executor goes with its worker process), the center releases them.

Made with an ``AsyncExecutor``, every method returns an awaitable instead of blocking. Without
``executor=``, the most recent Executor of the process is used.

Values travel as msgpack when they are plain data (``None``, bools, numbers, strings, bytes,
lists and string-keyed dicts of those), so clients in other languages can read them, and are
pickled otherwise. Futures inside a value put into a Queue or set into a Variable keep their
keys alive while the value is held, and become futures of whoever gets the value. A pickled
value says which Python pickled it (feature ``pickled-values``): a reader on another Python
minor version gets ``SerializationError`` for one that holds code (a lambda, say), whose
bytecode would crash it or compute wrong results there, and reads data as usual.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import queue as queue_module
import threading
import uuid
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from dist_protocol import timeouts
from dist_protocol.messages import Coordinate, CoordinateReply, Published
from dist_protocol.serialize import (Payload, SerializationError, deserialize, serialize,
                                     substitute)

from . import current
from .arguments import given_timeout
from .errors import ClusterError
from .packing import pack


class CoordinationError(ValueError):
    """The center refused a coordination request: a name used by another kind of
    primitive, a lease not held, a key it does not know..."""


def encode(value: Any) -> tuple[Payload, list[str]]:
    """The payload for ``value`` and the keys of the futures inside it."""
    deps: dict[str, Any] = {}
    packed = pack(value, deps)
    if not deps and _plain(value):
        return serialize(value, ("msgpack",)), []
    return serialize(packed), list(deps)


def _plain(value: Any, depth: int = 0) -> bool:
    """Data that msgpack gives back exactly as it was (a tuple would come back a list)."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes):
        return kind is not int or -2**63 <= value < 2**64
    if depth > 32:
        return False
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


class Primitive:
    """A named primitive on the center, reached through an executor."""

    kind = ""

    def __init__(self, name: str | None = None, executor: Any = None, *, client: Any = None):
        """``client``: dask's name for ``executor`` (``Queue("q", client=c)``)."""
        if client is not None:
            if executor is not None and executor is not client:
                raise TypeError("give the executor as executor= or as dask's client=, not both")
            executor = client
        self.name = name or f"{self.kind}-{uuid.uuid4().hex}"
        if executor is None:
            executor = current.default_executor_or_none()
        # Without any executor yet, bound at first use to the default one then, as dask's
        # primitives bind to the default client late (a ``Lock()`` made at import time)
        self._binding: tuple[Any, Any, bool] | None = (
            None if executor is None else current.resolve(executor))
        self._restored()

    @property
    def core(self) -> Any:
        return self._bound()[0]

    @property
    def executor(self) -> Any:
        return self._bound()[1]

    @property
    def asynchronous(self) -> bool:
        return self._bound()[2]

    def _bound(self) -> tuple[Any, Any, bool]:
        binding = self._binding
        if binding is None:
            binding = self._binding = current.resolve(None)
        return binding

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"

    def __reduce__(self):  # passed to a task: the same name there, on that side's executor
        return (_rebuild, (type(self), self._state()))

    def _state(self) -> dict[str, Any]:
        return {"name": self.name}

    def _restored(self) -> None:
        """Set up what is local to this process (after ``__init__`` or unpickling)."""

    def _ask(self, action: str, then: Callable[[CoordinateReply], Any], *,
             value: Payload | None = None, keys: list[str] | None = None,
             timeout: float | None = None, limit: int | None = None,
             lease: str | None = None, names: list[str] | None = None) -> Any:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout}")
        self._before_blocking()
        pickled_with = None if value is None else self._tag_of(value)
        request = self._request(lambda i: Coordinate(
            id=i, kind=self.kind, name=self.name, action=action, value=value,
            keys=list(keys or ()), timeout=timeout, limit=limit, lease=lease,
            pickled_with=pickled_with, names=list(names or ())))

        def settle(reply: CoordinateReply) -> Any:
            if reply.status == "error":
                raise CoordinationError(reply.error)
            return then(reply)

        if self.asynchronous:
            async def wait() -> Any:
                return settle(await self.core.call(request))
            return wait()
        return settle(self.core.run(request))

    # The protocol feature the center must have announced for this kind of primitive.
    feature = "coordination"

    def _request(self, make: Callable[[int], Coordinate]) -> Coroutine:
        center = self.core.center
        if center is not None and self.feature not in center.features:
            raise ClusterError(f"the center at {self.core.address} holds no {self.kind} "
                               "primitives (an older release: it did not announce the "
                               f"protocol feature {self.feature!r})")
        return self.core.ask(make)

    def _tag_of(self, value: Payload) -> str | None:
        center = self.core.center
        return self.core.envs.tag_of(value, center.features if center is not None
                                     else frozenset())

    def _check_readable(self, reply: CoordinateReply) -> None:
        """Before a value got is read: code pickled by another Python is refused."""
        if reply.value is not None:
            self.core.envs.check_shared(reply.value, reply.pickled_with,
                                        f"the value got from {self.kind} {self.name!r}")

    def _before_blocking(self) -> None:
        if not self.asynchronous:
            current.before_blocking(f"{self.kind} {self.name!r}")

    def _value(self, reply: CoordinateReply) -> Any:
        assert reply.value is not None
        if not reply.keys:
            return deserialize(reply.value)
        # The core held these keys when the reply came (before the news of them that follows
        # it): the futures made here take those holds over.
        futures = {key: self.core.future(key) for key in reply.keys}
        for key in reply.keys:
            self.core.unhold(key)
        return substitute(deserialize(reply.value), futures)


def _rebuild(cls: type[Primitive], state: dict[str, Any]) -> Primitive:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    obj._binding = current.resolve(None)
    obj._restored()
    return obj


def _timed_out(what: str, timeout: float | None) -> TimeoutError:
    return timeouts.TimeoutError(f"{what}: not done within {timeout} s")


class Queue(Primitive):
    """A first-in first-out queue on the center: ``put``/``get`` with timeouts, ``maxsize``
    (0: unbounded). Futures put in it keep their data alive until someone gets them."""

    kind = "queue"

    def __init__(self, name: str | None = None, executor: Any = None, maxsize: int = 0, *,
                 client: Any = None):
        super().__init__(name, executor, client=client)
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, not {maxsize}")
        self.maxsize = maxsize

    def _state(self) -> dict[str, Any]:
        return {"name": self.name, "maxsize": self.maxsize}

    def put(self, value: Any, timeout: float | None = None) -> Any:
        """Add ``value``; with the queue full, wait for room (``TimeoutError`` after
        ``timeout`` seconds; 0: do not wait)."""
        timeout = given_timeout("timeout", timeout)
        payload, keys = encode(value)

        def then(reply: CoordinateReply) -> None:
            if reply.status == "timeout":
                raise _timed_out(f"put into queue {self.name!r} (full)", timeout)
        return self._ask("put", then, value=payload, keys=keys, timeout=timeout,
                         limit=self.maxsize)

    def get(self, timeout: float | None = None, batch: bool | int = False) -> Any:
        """Take the oldest value; with the queue empty, wait for one (``TimeoutError``
        after ``timeout`` seconds; 0: do not wait).

        ``batch=True`` takes every value the queue holds now, a list (empty when it holds
        none: nothing waits); ``batch=n`` takes the ``n`` oldest, a list, waiting for them
        up to ``timeout`` in all -- if they are not all there in time, those taken go back
        into the queue (at its end) and ``TimeoutError`` is raised, as dask's ``get``."""
        timeout = given_timeout("timeout", timeout)
        if batch is False:
            def then(reply: CoordinateReply) -> Any:
                if reply.status == "timeout":
                    raise _timed_out(f"get from queue {self.name!r} (empty)", timeout)
                return self._value(reply)
            return self._ask("get", then, timeout=timeout)
        if batch is not True and (isinstance(batch, bool) or not isinstance(batch, int)
                                  or batch < 0):
            raise ValueError(f"batch must be True, False or a number of values >= 0, "
                             f"not {batch!r}")
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout}")
        self._before_blocking()
        taking = self._take(None if batch is True else batch, timeout)
        if self.asynchronous:
            async def wait() -> list:
                return [self._value(reply) for reply in await self.core.call(taking)]
            return wait()
        return [self._value(reply) for reply in self.core.run(taking)]

    async def _take(self, count: int | None, timeout: float | None) -> list[CoordinateReply]:
        """On the I/O loop: ``count`` values (None: all there are now), one request each."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        replies: list[CoordinateReply] = []
        while count is None or len(replies) < count:
            left = 0.0 if count is None else (
                None if deadline is None else max(0.0, deadline - loop.time()))
            try:
                reply = await self._request(self._get_request(left))
            except SerializationError:
                await self._put_back(replies)
                raise
            if reply.status == "error":
                raise CoordinationError(reply.error)
            if reply.status == "timeout":
                if count is None:
                    break
                await self._put_back(replies)
                raise _timed_out(f"get {count} values from queue {self.name!r} "
                                 f"(it gave {len(replies)})", timeout)
            replies.append(reply)
        return replies

    def _request(self, make: Callable[[int], Coordinate]) -> Coroutine:
        return self._readable(super()._request(make))

    async def _readable(self, request: Coroutine) -> CoordinateReply:
        """A value got that this process must not read goes back into the queue, at its end,
        rather than be lost with the error: a reader on its Python can still take it."""
        reply = await request
        try:
            self._check_readable(reply)
        except SerializationError as exc:
            await self._put_back([reply])
            raise SerializationError(f"{exc} (it was put back at the end of the queue)") \
                from None
        return reply

    def _get_request(self, timeout: float | None) -> Callable[[int], Coordinate]:
        return lambda i: Coordinate(id=i, kind=self.kind, name=self.name, action="get",
                                    timeout=timeout)

    def _put_request(self, reply: CoordinateReply) -> Callable[[int], Coordinate]:
        return lambda i: Coordinate(id=i, kind=self.kind, name=self.name, action="put",
                                    value=reply.value, keys=list(reply.keys),
                                    pickled_with=reply.pickled_with)

    async def _put_back(self, replies: list[CoordinateReply]) -> None:
        for reply in replies:
            await self._request(self._put_request(reply))
            for key in reply.keys:  # (held since the get; the queue holds them again)
                self.core.unhold(key)

    def qsize(self) -> Any:
        return self._ask("size", lambda reply: reply.count or 0)


class Variable(Primitive):
    """One value shared by name: ``set``, ``get`` (waits until set), ``delete``. A future set
    here keeps its key alive until it is replaced or deleted."""

    kind = "variable"

    def set(self, value: Any) -> Any:
        payload, keys = encode(value)
        return self._ask("set", lambda reply: None, value=payload, keys=keys)

    def get(self, timeout: float | None = None) -> Any:
        timeout = given_timeout("timeout", timeout)

        def then(reply: CoordinateReply) -> Any:
            if reply.status == "timeout":
                raise _timed_out(f"get variable {self.name!r} (not set)", timeout)
            self._check_readable(reply)
            return self._value(reply)
        return self._ask("get", then, timeout=timeout)

    def delete(self) -> Any:
        return self._ask("delete", lambda reply: None)


class Semaphore(Primitive):
    """At most ``max_leases`` holders at a time, cluster-wide. Leases go with the
    connection that took them: a holder that dies frees its lease."""

    kind = "semaphore"

    def __init__(self, max_leases: int = 1, name: str | None = None, executor: Any = None):
        super().__init__(name, executor)
        if max_leases < 1:
            raise ValueError(f"max_leases must be >= 1, not {max_leases}")
        self.max_leases = max_leases

    def _state(self) -> dict[str, Any]:
        return {"name": self.name, "max_leases": self.max_leases}

    def _restored(self) -> None:
        self._held: list[str] = []  # this object's leases, newest last
        self._held_lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> Any:
        """Take a lease; False when none came within ``timeout`` (or at once, when not
        ``blocking``)."""
        lease = uuid.uuid4().hex
        wait = given_timeout("timeout", timeout) if blocking else 0

        def then(reply: CoordinateReply) -> bool:
            if reply.status == "timeout":
                return False
            with self._held_lock:
                self._held.append(lease)
            return True
        return self._ask("acquire", then, timeout=wait, limit=self._limit(), lease=lease)

    def _limit(self) -> int:
        return self.max_leases

    def release(self) -> Any:
        with self._held_lock:
            if not self._held:
                raise RuntimeError(f"release of {self!r}, which this object does not hold")
            lease = self._held.pop()
        return self._ask("release", lambda reply: None, lease=lease)

    def get_value(self) -> Any:
        """The leases held now, by anyone."""
        return self._ask("count", lambda reply: reply.count or 0)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    async def __aenter__(self):
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.release()


class Lock(Semaphore):
    """A cluster-wide lock (not re-entrant): a Semaphore of one lease, under its own kind so
    that a name cannot be both."""

    kind = "lock"

    def __init__(self, name: str | None = None, executor: Any = None):
        super().__init__(1, name, executor)

    def _state(self) -> dict[str, Any]:
        return {"name": self.name, "max_leases": 1}

    def locked(self) -> Any:
        return self._ask("count", lambda reply: bool(reply.count))


class Event(Primitive):
    """A flag shared by name: ``set``, ``clear``, ``wait`` until set, ``is_set``."""

    kind = "event"

    def set(self) -> Any:
        return self._ask("set", lambda reply: None)

    def clear(self) -> Any:
        return self._ask("clear", lambda reply: None)

    def wait(self, timeout: float | None = None) -> Any:
        """True once the event is set; False if ``timeout`` passed first."""
        return self._ask("wait", lambda reply: reply.status == "ok",
                         timeout=given_timeout("timeout", timeout))

    def is_set(self) -> Any:
        return self._ask("wait", lambda reply: reply.status == "ok", timeout=0)


class Pub(Primitive):
    """Publish messages on a topic: every ``Sub`` of that topic subscribed at the time gets
    them (a message published while nobody listens is dropped, as with dask)."""

    kind = "topic"

    def put(self, value: Any) -> Any:
        payload, keys = encode(value)
        if keys:
            raise CoordinationError("a published message cannot carry futures (nothing would "
                                    "hold their keys): put them into a Queue instead")
        return self._ask("publish", lambda reply: reply.count or 0, value=payload)

    publish = put


class Sub(Primitive):
    """Receive a topic's messages, in the order they were published: ``get(timeout)``, or
    iterate. Subscribed from creation until ``close()`` (or its executor closes)."""

    kind = "topic"

    def __init__(self, name: str, executor: Any = None, *, client: Any = None):
        super().__init__(name, executor, client=client)

    def _restored(self) -> None:
        self._inbox: queue_module.SimpleQueue = queue_module.SimpleQueue()
        self.core.topics.add(self.name, self._inbox)
        self._subscribing = self._subscribe()

    def _subscribe(self) -> concurrent.futures.Future | None:
        """Subscribed before this returns (synchronous), or before the first ``get``."""
        self._before_blocking()
        request = self._request(lambda i: Coordinate(
            id=i, kind="topic", name=self.name, action="subscribe"))
        reply = asyncio.run_coroutine_threadsafe(request, self.core.io.loop)
        if self.asynchronous:
            return reply
        if reply.result().status == "error":
            self.core.topics.remove(self.name, self._inbox)
            raise CoordinationError(reply.result().error)
        return None

    def get(self, timeout: float | None = None) -> Any:
        timeout = given_timeout("timeout", timeout)
        if self.asynchronous:
            return self._get_async(timeout)
        return self._take(timeout)

    def _take(self, timeout: float | None) -> Any:
        current.before_blocking(f"topic {self.name!r}")
        try:
            msg: Published = self._inbox.get(timeout=timeout)
        except queue_module.Empty:
            raise _timed_out(f"message on topic {self.name!r}", timeout) from None
        self.core.envs.check_shared(msg.value, msg.pickled_with,
                                    f"the message on topic {self.name!r}")
        return deserialize(msg.value)

    async def _get_async(self, timeout: float | None) -> Any:
        subscribing = getattr(self, "_subscribing", None)
        if subscribing is not None:
            reply = await asyncio.wrap_future(subscribing)
            self._subscribing = None
            if reply.status == "error":
                raise CoordinationError(reply.error)
        return await asyncio.to_thread(self._take, timeout)

    def __iter__(self):
        while True:
            yield self._take(None)

    def close(self) -> Any:
        if self.core.topics.remove(self.name, self._inbox):
            return self._ask("unsubscribe", lambda reply: None)
        return asyncio.sleep(0) if self.asynchronous else None


class Topics:
    """Where the executor hands ``published`` messages: the inboxes of its Subs by topic.

    Inboxes are held weakly: a Sub dropped without ``close()`` stops receiving (its messages
    would pile up unread for as long as the executor lives), and once a topic has no Sub left
    here, ``deliver`` says so, for the center to be told to stop sending."""

    def __init__(self) -> None:
        self._inboxes: dict[str, weakref.WeakSet[queue_module.SimpleQueue]] = {}
        self._lock = threading.Lock()

    def add(self, topic: str, inbox: queue_module.SimpleQueue) -> None:
        with self._lock:
            self._inboxes.setdefault(topic, weakref.WeakSet()).add(inbox)

    def remove(self, topic: str, inbox: queue_module.SimpleQueue) -> bool:
        """True: that was the topic's last inbox here (the center may stop sending)."""
        with self._lock:
            inboxes = self._inboxes.get(topic)
            if inboxes is not None:
                inboxes.discard(inbox)
                if inboxes:
                    return False
            self._inboxes.pop(topic, None)
            return True

    def names(self) -> list[str]:
        """The topics with a Sub here (to subscribe to again on a new connection)."""
        with self._lock:
            return sorted(name for name, inboxes in self._inboxes.items() if inboxes)

    def deliver(self, msg: Published,
                deserted: Callable[[str], None] = lambda topic: None) -> None:
        """Into every inbox of the topic; ``deserted(topic)`` when every Sub of it here was
        dropped unclosed (called under the lock: a Sub made meanwhile subscribes after)."""
        with self._lock:
            inboxes = self._inboxes.get(msg.topic)
            if inboxes is None:
                return
            listening = list(inboxes)
            if not listening:
                del self._inboxes[msg.topic]
                deserted(msg.topic)
        for inbox in listening:
            inbox.put(msg)


__all__ = ["CoordinationError", "Event", "Lock", "Pub", "Queue", "Semaphore", "Sub", "Topics",
           "Variable", "encode"]
