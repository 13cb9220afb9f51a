"""Submitting: from a call of the user's function to its tasks queued for the center.

The ``Submitter`` of a client builds each call's task (``TaskBuilder``: the function's payload,
the arguments packed, the futures inside them pinned), keys and holds its Future in the
client's state, and queues the tasks new to the center in order with the releases, through the
core (``ClientCore.queue_now``/``send``). The core decides when the queue is written; this
module, what goes in it for a submit or a map.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from dist_protocol.messages import Message, Submit, TaskSpec
from dist_protocol.serialize import Payload

from .. import shutdown
from ..arguments import whole_number
from ..environments import ClusterEnvironments
from ..future import Future
from ..held_keywords import hold_large_keywords
from ..keys import funcname, given_key, map_keys, task_key
from ..pickled_futures import pin
from ..tasks import TaskBuilder, function_holds_code, warn_if_large
from .state import ClientState

SUBMIT_CHUNK = 1_000  # tasks per submit message: see submit_many


class Core(Protocol):
    """What submitting needs of its client's core (``core.client.ClientCore``)."""

    lock: threading.RLock  # (the state's: see ClientCore)
    state: ClientState
    envs: ClusterEnvironments
    accepting: bool
    facade: Callable[[], Any]

    def until_connected(self) -> None: ...
    def check_pickled_code(self, options: dict, refresh: bool = True,
                           code: bool = True) -> None: ...
    def refuse_foreign(self, futures: Any, what: str = "a task") -> None: ...
    def queue_now(self, message: Message) -> None: ...
    def send(self, *messages: Message) -> None: ...


class Submitter:
    """The tasks of one client's submits and maps (from any thread but the I/O thread's
    callbacks)."""

    def __init__(self, core: Core):
        self._core = core
        self._tasks = TaskBuilder()

    def function_payload(self, func: Any) -> Payload:
        return self._tasks.function_payload(func)

    def futures_in_function(self, func: Any) -> list:
        return self._tasks.futures_in_function(func)

    def task(self, key: str, function: Payload, args: tuple, kwargs: dict, options: dict,
             func: Any = None, pickled_futures: list | None = None) -> TaskSpec:
        return self._tasks.build(key, function, args, kwargs, options, func,
                                 pickled_with=self._core.envs.tag, pickled_futures=pickled_futures,
                                 refuse_foreign=self._core.refuse_foreign)

    def submit_call(self, func, args: tuple, kwargs: dict, key: Any, pure: bool,
                    options: dict, stacklevel: int = 2, refresh: bool = True) -> Future:
        """The Future of one call: ``submit_many`` of one call, without its chunks, sets
        and lists (a loop of ``submit(...).result()`` pays the path once a round trip)."""
        if not callable(func):
            raise TypeError(f"submit needs a callable, got {type(func).__name__}")
        key = task_key(func, args, kwargs, pure) if key is None or key == "" else given_key(key)
        core = self._core
        function, in_function = self._function_to_submit(func, options, refresh)
        facade = core.facade()
        task = None
        with core.lock:
            state, new = core.state.hold_to_submit(key)
            future = Future.of_held_one(key, state, facade)
            if new:
                pickled: list = []  # futures hidden inside the arguments
                task = self.task(key, function, args, kwargs, options, func, pickled)
                if pickled or in_function:
                    pin(future, pickled + in_function)
                core.queue_now(Submit(tasks=[task], small_values=True))
        if task is not None:
            warn_if_large(func, [task], stacklevel + 1)
        return future

    def _function_to_submit(self, func, options: dict, refresh: bool) -> tuple[Payload, list]:
        """Before a submit of ``func``: the client takes new work, the workers run this
        Python; ``func``'s payload and the futures inside it (of this cluster)."""
        core = self._core
        if not core.accepting:
            raise shutdown.refused(core)
        core.until_connected()  # new work goes to the center reconnected to
        function = self.function_payload(func)
        # (refused here, before anything is sent; an argument that holds code keeps its task
        # to workers of this Python at the center, which fails it when none joins)
        core.check_pickled_code(options, refresh, code=function_holds_code(function))
        in_function = self.futures_in_function(func)
        if in_function:
            core.refuse_foreign(in_function, f"the function {funcname(func)}")
        return function, in_function

    def submit_map(self, func, iterables: tuple, kwargs: dict, key: str | list | None,
                   pure: bool, options: dict, stacklevel: int = 2,
                   refresh: bool = True, batch_size: int | None = None) -> list[Future]:
        """Futures of ``func`` over ``zip(*iterables)``, in messages of ``batch_size`` tasks
        to the center (default ``SUBMIT_CHUNK``)."""
        if not callable(func):
            raise TypeError(f"map needs a callable, got {type(func).__name__}")
        chunk = SUBMIT_CHUNK if batch_size is None else whole_number("batch_size", batch_size,
                                                                      minimum=1)
        if not iterables:
            return []
        argsets = list(zip(*iterables))
        keys = map_keys(func, argsets, kwargs, key, pure)
        if kwargs and len(argsets) > 1:
            kwargs = hold_large_keywords(self, kwargs, options, pure, stacklevel + 1)
        return self.submit_many(func, list(zip(keys, argsets)), kwargs, options,
                                stacklevel + 1, refresh, chunk)

    def submit_many(self, func, calls: list[tuple[str, tuple]], kwargs: dict, options: dict,
                    stacklevel: int = 2, refresh: bool = True,
                    chunk_size: int = SUBMIT_CHUNK, warn: bool = True) -> list[Future]:
        """Futures for ``calls``; new keys go to the center in chunks as they are built, so
        the cluster starts on the first tasks of a long map while the rest are prepared.

        The center takes in a submit message whole, in one turn of its event loop: the chunk
        bounds how long another client (its handshake, its own submits) waits behind this
        one. At 5,000 tasks a turn took 0.3 s on a quiet machine and a newcomer's handshake
        waited up to 7 s on a loaded one. What a message costs beyond its tasks is shared by
        1,000 tasks still."""
        core = self._core
        function, in_function = self._function_to_submit(func, options, refresh)
        facade = core.facade()
        futures: list[Future] = []
        warned = False
        for start in range(0, len(calls), chunk_size):
            tasks = []
            chunk = calls[start:start + chunk_size]
            keys = [key for key, _ in chunk]
            with core.lock:
                new = set(core.state.keys_to_submit(keys))
                # Held and made in one pass, not a pass through the lock for each Future.
                made = Future.of_held(keys, core.state.hold_many(keys), facade)
                futures += made
                pickled: list = []  # futures hidden inside the arguments of the task built
                # (``task`` for each, with no call of its own per task)
                build, tag, refuse = self._tasks.build, core.envs.tag, core.refuse_foreign
                for i, (key, args) in enumerate(chunk):
                    if key in new:
                        new.discard(key)  # a key twice in one map is one task
                        tasks.append(build(key, function, args, kwargs, options, func, tag,
                                           pickled, refuse))
                        if pickled or in_function:
                            pin(made[i], pickled + in_function)
                            pickled = []
                if tasks:
                    core.send(Submit(tasks=tasks, small_values=True))
            if tasks and warn and not warned:
                warn_if_large(func, tasks, stacklevel + 1)
                warned = True
        return futures


__all__ = ["SUBMIT_CHUNK", "Submitter"]
