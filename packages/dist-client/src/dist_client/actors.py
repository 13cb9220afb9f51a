"""Actor handles: call methods of an object that lives on one worker, straight from here.

``e.submit(Counter, actor=True).result()`` is an ``Actor``; ``actor.increment(5)`` sends an
``actor-call`` to the hosting worker (not through the center) and returns an ``ActorFuture``
(``result()``, ``done()``, ``await``); ``actor.n`` reads an attribute. The calls of one process
to one worker share a connection, so they reach the actor in the order they were made.

Handles pickle as (key, address): passed to a task or another actor they reconnect there. A
handle made from the actor's future keeps that future, and so the actor, alive; after the
actor's worker dies and the actor is made again (``max_restarts=``), its later calls go to the
new one (whose state starts afresh). Calls in flight when the worker died, and every call when
the actor is gone for good, raise ``ActorLost``.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import itertools
import threading
from typing import Any

from dist_protocol import task_context
from dist_protocol.actors import rebuild
from dist_protocol.comm import Comm, connect
from dist_protocol.errors import CommClosedError, ProtocolError
from dist_protocol.messages import ActorCall, ActorResult, Message, TaskErred
from dist_protocol.security import load_token
from dist_protocol.environment import describe, local_environment, pickle_tag
from dist_protocol.serialize import SerializationError, deserialize, holds_code, serialize

from . import current
from .arguments import given_timeout
from .errors import ClusterError, LostDataError
from .core.loop import LoopThread
from .task_errors import exception_from

# After a worker's death is seen here, how long a handle waits for the center to say the actor
# is being made again (its future pending) before deciding it is gone.
RESTART_NOTICE = 10.0


class ActorLost(LostDataError):
    """The actor's worker died (or it was released): its state is gone."""


class ActorFuture(concurrent.futures.Future):
    """The outcome of one actor call: ``result(timeout)``, ``done()``, or ``await`` it."""

    def __await__(self):
        return asyncio.wrap_future(self).__await__()

    def result(self, timeout: float | str | None = None) -> Any:
        """The call's value; ``timeout`` in seconds or, as dask takes it, ``"100ms"``."""
        current.before_blocking("waiting for an actor call")
        return super().result(given_timeout("timeout", timeout))

    def exception(self, timeout: float | str | None = None) -> BaseException | None:
        current.before_blocking("waiting for an actor call")
        return super().exception(given_timeout("timeout", timeout))

    def __repr__(self) -> str:
        state = "finished" if self.done() else "pending"
        return f"<ActorFuture: {state}>"


class Calls:
    """This process's connections to actor-hosting workers, on one I/O thread.

    Calls made from any thread queue up here and one coroutine sends them, in the order they
    were made, waking the I/O loop once per burst rather than once per call; replies settle
    their ``ActorFuture`` by id as they arrive."""

    _instance: Calls | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.io = LoopThread("dist-actor-calls")
        self.comms: dict[str, Comm] = {}
        self.connecting: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        # request id -> (its future, the handle, the worker, the connection it went on)
        self._waiting: dict[int, tuple[ActorFuture, Actor, str, Comm]] = {}
        self._queued: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._woken = False
        self._ready: asyncio.Event | None = None  # made on the I/O loop

    @classmethod
    def get(cls) -> Calls:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def submit(self, actor: Actor, message: ActorCall, out: ActorFuture,
               credentials: Credentials) -> None:
        """Send ``message`` for ``actor`` (from any thread); ``out`` gets the outcome."""
        with self._lock:
            self._queued.append((actor, message, out, credentials))
            if self._woken:
                return
            self._woken = True
        self.io.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
            self.io.loop.create_task(self._send_queued(self._ready))
        self._ready.set()

    async def _send_queued(self, ready: asyncio.Event) -> None:
        while True:
            await ready.wait()
            ready.clear()
            with self._lock:
                batch = list(self._queued)
                self._queued.clear()
                self._woken = False
            for actor, message, out, credentials in batch:
                try:  # awaits only to connect, or to find a restarted actor
                    address = await actor._current_address()
                    comm = await self._comm(address, credentials)
                    request_id = next(self._ids)
                    self._waiting[request_id] = (out, actor, address, comm)
                    comm.send(ActorCall(id=request_id, key=message.key, name=message.name,
                                        args=message.args))
                except BaseException as exc:  # noqa: BLE001 -- the call's, not the loop's
                    _settle(out, exception=actor._lost(exc))

    def _replied(self, messages: list[Message]) -> None:
        for reply in messages:
            waiting = self._waiting.pop(getattr(reply, "id", -1), None)
            if waiting is None:
                continue
            out, actor, address, comm = waiting
            try:
                reply = _refuse_code_from_another_python(comm, reply)
                _settle(out, value=actor._settle(address, reply))
            except BaseException as exc:  # noqa: BLE001 -- the call's outcome
                _settle(out, exception=exc)

    async def _comm(self, address: str, credentials: Credentials) -> Comm:
        comm = self.comms.get(address)
        if comm is not None and not comm.is_closed:
            return comm
        pending = self.connecting.get(address)
        if pending is None:  # one connection per worker, however many calls wait for it
            pending = self.connecting[address] = asyncio.ensure_future(
                self._open(address, credentials))
            pending.add_done_callback(lambda _: self.connecting.pop(address, None))
        return await asyncio.shield(pending)

    async def _open(self, address: str, credentials: Credentials) -> Comm:
        token, ssl = credentials
        comm = await connect(address, role="client", token=token, ssl_context=ssl, timeout=10)
        comm.set_handler(self._replied)
        comm.on_close(self._closed)
        self.comms[address] = comm
        return comm

    def _closed(self, comm: Comm) -> None:
        for address, known in list(self.comms.items()):
            if known is comm:
                del self.comms[address]
        error = CommClosedError(f"the connection closed: {comm.close_reason}")
        for request_id, (out, actor, _, on) in list(self._waiting.items()):
            if on is comm:
                del self._waiting[request_id]
                _settle(out, exception=actor._lost(error))


def _refuse_code_from_another_python(comm: Comm, reply: Message) -> Message:
    """An actor's value holding Python code (a function, a class's methods, pickled by
    value) from a worker on another Python minor version is refused: its bytecode can crash
    this process or compute wrong results. Data crosses. Such a pickled exception is left
    out: the error is raised from its text (type name, message, the worker's traceback)."""
    worker = comm.peer_environment
    if worker is None or pickle_tag(worker) == pickle_tag():
        return reply
    error = getattr(reply, "exception", None)
    if isinstance(reply, ActorResult) and error is not None and holds_code(error):
        return dataclasses.replace(reply, exception=None, message=(
            f"{reply.message} (it was pickled on {describe(worker)} and holds Python code, "
            f"which this client, on {describe(local_environment())}, does not build: "
            f"bytecode differs between Python versions)"))
    value = getattr(reply, "value", None)
    if value is None or not holds_code(value):
        return reply
    raise SerializationError(
        f"the actor's value from worker {comm.peer_address} was pickled on {describe(worker)} "
        f"and holds Python code, which this process, on {describe(local_environment())}, does "
        f"not run: bytecode differs between Python versions")


def _settle(out: ActorFuture, value: Any = None, exception: BaseException | None = None) -> None:
    if out.done():
        return
    if exception is not None:
        out.set_exception(exception)
    else:
        out.set_result(value)


Credentials = tuple[Any, Any]  # (token, TLS context) to reach workers with


def credentials() -> Credentials:
    """How this process reaches the cluster's workers: as its executor does; inside a task
    with none, as the worker running it; else the token of the environment."""
    executor = current.running()
    if executor is not None:
        return executor.core.token, executor.core.ssl_context
    context = task_context.current_or_process()
    if context is not None:
        return context.token, context.ssl_context
    return load_token(None, None), None


class Actor:
    """A handle on an actor: its methods return ``ActorFuture``s, other names read the
    actor's attributes (blocking; inside a running event loop, an ``ActorFuture`` to await)."""

    def __init__(self, key: str, address: str, type_name: str, methods: tuple[str, ...],
                 future: Any = None):
        self._key = key
        self._address = address
        self._type = type_name
        self._methods = frozenset(methods)
        self._future = future  # the actor's Future, where this handle came from one
        self._dead: str | None = None  # the address it was lost at, until found again
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return self._key

    @property
    def address(self) -> str:
        """The worker it lives on."""
        return self._address

    def __reduce__(self):
        return (rebuild, (self._key, self._address, self._type, tuple(sorted(self._methods))))

    def __repr__(self) -> str:
        return f"<Actor: {self._type}, key={self._key}, worker={self._address}>"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | self._methods)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._methods:
            return _Method(self, name)
        future = self._send(name, None)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return future.result()
        return future

    def _bind(self, future: Any) -> Actor:
        """Made from the actor's own future: hold it (so the actor lives while this does)."""
        self._future = future
        return self

    def _send(self, name: str, args: tuple | None, kwargs: dict | None = None) -> ActorFuture:
        payload = None
        if args is not None:
            try:
                payload = serialize((args, kwargs or {}))
            except SerializationError as exc:
                raise SerializationError(f"cannot pickle the arguments of {self._type}.{name}"
                                         f" for the actor {self._key}: {exc}") from None
        out = ActorFuture()
        Calls.get().submit(self, ActorCall(id=0, key=self._key, name=name, args=payload), out,
                           credentials())
        return out

    def _settle(self, address: str, reply: Message) -> Any:
        assert isinstance(reply, ActorResult)
        if reply.status == "ok":
            assert reply.value is not None
            return deserialize(reply.value)
        if reply.status == "lost":
            if self._future is not None:  # it may have been made again elsewhere: look there
                self._dead = address
            raise ActorLost(f"the actor {self._key} ({self._type}): {reply.message}")
        raise exception_from(TaskErred(key=self._key, exception_type=reply.exception_type,
                                       message=reply.message, traceback=reply.traceback,
                                       exception=reply.exception))

    def _lost(self, exc: BaseException) -> BaseException:
        if isinstance(exc, (CommClosedError, OSError, ProtocolError, TimeoutError)):
            self._dead = self._address
            return ActorLost(f"the actor {self._key} ({self._type}) on worker {self._address}"
                             f" is lost: {type(exc).__name__}: {exc}; its state is gone")
        return exc

    async def _current_address(self) -> str:
        """Where to call: after a loss seen here, where the actor was made again -- if it
        was (its future tells), else ``ActorLost``."""
        dead = self._dead
        if dead is None:
            return self._address
        future = self._future
        if future is None:
            raise ActorLost(f"the actor {self._key} ({self._type}) was lost with its worker "
                            f"{dead}; take a new handle from its future (a restarted actor "
                            "is found from there)")
        handle = await asyncio.to_thread(_restarted_handle, future, dead)
        self._address, self._dead = handle.address, None
        return self._address


def _restarted_handle(future: Any, dead: str) -> Actor:
    """The actor's handle once its future names a worker other than ``dead``."""
    waited = 0.0
    while True:
        try:
            handle = future.result()
        except LostDataError as exc:
            raise ActorLost(str(exc)) from None
        if handle.address != dead:
            return handle
        if waited >= RESTART_NOTICE:
            raise ActorLost(f"the actor {future.key} was lost with its worker {dead}, and the "
                            "center has not said it is being made again")
        threading.Event().wait(0.05)  # the center's notice of the death is on its way
        waited += 0.05


class _Method:
    def __init__(self, actor: Actor, name: str):
        self._actor = actor
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> ActorFuture:
        return self._actor._send(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<actor method {self._name} of {self._actor!r}>"


def actor_options(core: Any, options: dict, actor: bool, max_restarts: int) -> bool:
    """Add an actor's task options to ``options``; whether the task is an actor."""
    if not actor:
        if max_restarts:
            raise ValueError("max_restarts is for actors (actor=True)")
        return False
    center = core.center
    if center is not None and "actors" not in center.features:
        raise ClusterError(f"the center at {core.address} cannot host actors (an older "
                           "release: it did not announce the protocol feature 'actors')")
    if max_restarts < 0:
        raise ValueError(f"max_restarts must be >= 0, not {max_restarts}")
    options.update(actor=True, max_restarts=int(max_restarts) or None)
    return True


def held_by_future(value: Any, future: Any) -> Any:
    """A task's value as its future gives it: an actor's handle made from its own future
    holds that future (the actor lives while either does); any other value as it is. A
    function, not a method: a handle's attributes are the actor's methods."""
    return value._bind(future) if type(value) is Actor else value


def lost_error(message: str) -> LostDataError:
    """The error for a key the center says is lost: ``ActorLost`` for an actor."""
    return ActorLost(message) if message.startswith("ActorLost:") else LostDataError(message)


__all__ = ["Actor", "ActorFuture", "ActorLost", "held_by_future", "lost_error"]
