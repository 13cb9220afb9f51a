"""Actors hosted by this worker: their objects, and the calls that callers send straight here.

An actor is made by a task whose ``compute-task`` says ``actor``: its constructor runs on the
actor's own thread, the object stays here, and the key's value is an ``ActorRef`` (where the
actor lives). Calls (``actor-call``) from one connection run in the order they came, one at a
time on that thread; ``async def`` methods run on the worker's event loop instead, so several
can be in progress at once. A call's error goes back to its caller only. The object goes
when the center frees its key.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dist_protocol.actors import public_methods, rebuild
from dist_protocol.comm import Comm
from dist_protocol.errors import CommClosedError
from dist_protocol.messages import ActorCall, ActorResult, downgrade
from dist_protocol.environment import describe, local_environment, pickle_tag
from dist_protocol.serialize import holds_code, serialize

from .events import Execute, ExecutionFailed, ExecutionSucceeded
from .execution import error_event, load_arguments, load_function
from .sigterm_watch import let_this_thread_take_sigterm

log = logging.getLogger("dist.worker")


class Hosted:
    def __init__(self, instance: Any, thread: ThreadPoolExecutor):
        self.instance = instance
        self.thread = thread  # one thread: the actor's calls run one at a time, in order


class ActorHost:
    def __init__(self, loop: asyncio.AbstractEventLoop, address: Callable[[], str],
                 on_outcome: Callable[[ExecutionSucceeded | ExecutionFailed], None]):
        self.loop = loop
        self.address = address
        self.on_outcome = on_outcome  # how a constructor's outcome reaches the worker state
        self.hosted: dict[str, Hosted] = {}
        self._running: set[asyncio.Task] = set()
        # Answers from actor threads, sent by the loop: woken once per burst, not per call.
        self._answers: list[tuple[Comm, ActorResult]] = []
        self._answers_lock = threading.Lock()

    # -- life ---------------------------------------------------------------------------------
    def create(self, ins: Execute) -> None:
        """Run the constructor on a new thread, the actor's from now on."""
        thread = ThreadPoolExecutor(1, thread_name_prefix=f"actor-{ins.key[:40]}",
                                    initializer=let_this_thread_take_sigterm)
        future = thread.submit(self._construct, ins)
        future.add_done_callback(lambda done: self.loop.call_soon_threadsafe(
            self._constructed, ins.key, thread, done.result()))

    def _construct(self, ins: Execute) -> tuple[Any, ExecutionSucceeded | ExecutionFailed]:
        try:
            make = load_function(ins.function)
            args, kwargs = load_arguments(ins.args, ins.inputs)
        except BaseException as exc:  # noqa: BLE001 -- the actor's error, for its creator
            return None, error_event(ins.key, exc, f"could not load actor {ins.key} on the "
                                                   f"worker: {type(exc).__name__}: ")
        start = time.time()
        try:
            instance = make(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            return None, error_event(ins.key, exc)
        ref = rebuild(ins.key, self.address(), type(instance).__name__,
                      public_methods(instance))
        payload = serialize(ref)
        return instance, ExecutionSucceeded(ins.key, ref, payload.nbytes,
                                            type(instance).__name__, start, time.time(),
                                            payload)

    def _constructed(self, key: str, thread: ThreadPoolExecutor,
                     result: tuple[Any, ExecutionSucceeded | ExecutionFailed]) -> None:
        instance, outcome = result
        if isinstance(outcome, ExecutionSucceeded):
            self.hosted[key] = Hosted(instance, thread)
        else:
            thread.shutdown(wait=False)
        self.on_outcome(outcome)

    def free(self, keys: list[str]) -> None:
        for key in keys:
            hosted = self.hosted.pop(key, None)
            if hosted is not None:
                hosted.thread.shutdown(wait=False)  # calls queued before still finish

    def close(self) -> None:
        self.free(list(self.hosted))

    # -- calls --------------------------------------------------------------------------------
    def call(self, comm: Comm, msg: ActorCall) -> None:
        hosted = self.hosted.get(msg.key)
        if hosted is None:
            _send(comm, ActorResult(id=msg.id, status="lost", message=(
                f"no actor {msg.key} on worker {self.address()}: it was released, or its "
                "worker restarted")))
            return
        refused = _code_from_another_python(comm, msg)
        if refused:
            _send(comm, ActorResult(id=msg.id, status="error",
                                    exception_type="EnvironmentMismatch", message=refused))
            return
        method = getattr(type(hosted.instance), msg.name, None) if msg.args is not None \
            else None
        if method is not None and inspect.iscoroutinefunction(method):
            task = self.loop.create_task(self._call_async(comm, hosted, msg))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            return
        hosted.thread.submit(self._call_sync, comm, hosted, msg)

    def _call_sync(self, comm: Comm, hosted: Hosted, msg: ActorCall) -> None:
        try:
            result = self._reply(msg, self._invoke(hosted, msg))
        except BaseException as exc:  # noqa: BLE001 -- the call's error, for its caller
            result = _error(msg, exc)
        with self._answers_lock:
            self._answers.append((comm, result))
            if len(self._answers) > 1:
                return  # the loop is already asked to send them
        self.loop.call_soon_threadsafe(self._send_answers)

    def _send_answers(self) -> None:
        with self._answers_lock:
            answers, self._answers = self._answers, []
        for comm, result in answers:
            _send(comm, result)

    async def _call_async(self, comm: Comm, hosted: Hosted, msg: ActorCall) -> None:
        try:
            result = self._reply(msg, await self._invoke(hosted, msg))
        except BaseException as exc:  # noqa: BLE001
            result = _error(msg, exc)
        _send(comm, result)

    @staticmethod
    def _invoke(hosted: Hosted, msg: ActorCall) -> Any:
        instance = hosted.instance
        if msg.args is None:
            if msg.name.startswith("_"):
                raise AttributeError(f"{msg.name!r}: private attributes of an actor are not "
                                     "read remotely")
            return getattr(instance, msg.name)
        if msg.name.startswith("_"):
            raise AttributeError(f"{type(instance).__name__} actor: {msg.name!r} is private; "
                                 "only public methods can be called")
        method = getattr(instance, msg.name)
        if not callable(method):
            raise TypeError(f"{type(instance).__name__}.{msg.name} is not a method "
                            f"({type(method).__name__})")
        args, kwargs = load_arguments(msg.args, {})
        return method(*args, **kwargs)

    @staticmethod
    def _reply(msg: ActorCall, value: Any) -> ActorResult:
        # A value none of the caller's serializers can represent raises SerializationError:
        # the call's error, for its caller.
        return ActorResult(id=msg.id, status="ok",
                           value=serialize(value, msg.serializers or ("pickle",)))


def _code_from_another_python(comm: Comm, msg: ActorCall) -> str:
    """Why the call's arguments are not read here: Python code (a function, a class's
    methods, pickled by value) from a caller on another Python minor version, whose bytecode
    can crash this worker or compute wrong results; empty when they are read (data crosses)."""
    caller = comm.peer_environment
    if caller is None or msg.args is None or pickle_tag(caller) == pickle_tag() \
            or not holds_code(msg.args):
        return ""
    return (f"the arguments of {msg.name} for the actor {msg.key} were pickled by "
            f"{describe(caller)} and hold Python code, which this worker, on "
            f"{describe(local_environment())}, does not run: bytecode differs between Python "
            f"versions")


def _error(msg: ActorCall, exc: BaseException) -> ActorResult:
    erred = error_event(msg.key, exc).error
    return ActorResult(id=msg.id, status="error", exception_type=erred.exception_type,
                       message=erred.message, traceback=erred.traceback,
                       exception=erred.exception)


def _send(comm: Comm, message: ActorResult) -> None:
    try:
        # The pickled exception only to callers that read it (pickled-exceptions).
        comm.send(downgrade(message, comm.features))
    except CommClosedError:
        pass  # the caller went away: nobody waits for this answer


__all__ = ["ActorHost"]
