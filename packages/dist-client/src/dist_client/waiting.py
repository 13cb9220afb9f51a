"""``wait`` and ``as_completed``, as their ``concurrent.futures`` namesakes behave."""
from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import Any, NamedTuple

from dist_protocol import task_context, timeouts

from .arguments import given_timeout
from .core.waiters import AllDone, LoopWaiter, ThreadWaiter
from .future import Future
from .packing import futures_of


class DoneAndNotDone(NamedTuple):
    done: set[Future]
    not_done: set[Future]


def wait(futures: Iterable[Future] | Future, timeout: float | None = None,
         return_when: str = ALL_COMPLETED) -> Any:
    """Block until the futures are done (or the first one, or the first error); on timeout
    return what is done so far, as ``concurrent.futures.wait`` does. Futures of other
    executors (``concurrent.futures.Future``) may be among them.

    Futures of an ``AsyncExecutor`` waited for on a running event loop give an awaitable
    instead, as dask's ``wait`` does with an asynchronous client: ``await wait(futures)``
    (the loop goes on meanwhile)."""
    timeout = given_timeout("timeout", timeout)
    futures = _waitables(futures)
    if return_when not in (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION):
        raise ValueError(f"unknown return_when {return_when!r}")
    if not all(isinstance(f, Future) for f in futures):
        # Futures of other executors among them: the standard library's wait takes both.
        done, not_done = concurrent.futures.wait(futures, timeout, return_when)
        return DoneAndNotDone(done, not_done)  # type: ignore[arg-type]
    enough = _Enough(futures, return_when)
    if _awaited(futures):
        return _wait_on_loop(futures, enough, timeout)
    with ThreadWaiter(enough.pending) as waiter:
        if not enough():
            with task_context.slot_given_back():
                waiter.until(enough, timeout)
    return _split(futures)


def _waitables(given: Any) -> set:
    """The futures ``wait`` waits for: ``given`` itself, or those in it -- in an iterable,
    also inside its lists, tuples, sets, dicts and persisted dask collections, as dask's
    ``wait`` finds them; futures of other executors as they are."""
    if isinstance(given, concurrent.futures.Future):
        return {given}
    if hasattr(given, "__dask_graph__") or isinstance(given, dict):
        return set(futures_of(given))
    found: set = set()
    for item in given:
        if isinstance(item, concurrent.futures.Future):
            found.add(item)
        else:
            found.update(futures_of(item))
    return found


def _awaited(futures: set[Future]) -> bool:
    """Whether ``wait`` is called on an event loop for an ``AsyncExecutor``'s futures."""
    executors = [f.executor for f in futures if f.executor is not None]
    if not executors or not all(getattr(e, "asynchronous", False) for e in executors):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _wait_on_loop(futures: set[Future], enough: _Enough,
                        timeout: float | None) -> DoneAndNotDone:
    try:
        await timeouts.wait_for(LoopWaiter(enough.pending).until(enough), timeout)
    except TimeoutError:
        pass  # what is done so far, as on a thread
    return _split(futures)


def _split(futures: set[Future]) -> DoneAndNotDone:
    done = {f for f in futures if f.done()}
    return DoneAndNotDone(done, futures - done)


# Done without raising: ``FIRST_EXCEPTION`` waits on past these, as ``concurrent.futures``'
# does (a cancelled future raised nothing).
_NOT_FAILED = ("finished", "cancelled")


class _Enough:
    """Whether ``wait`` may return: every future done, or the first (``FIRST_COMPLETED``),
    or the first error (``FIRST_EXCEPTION``); ``pending`` are the keys to watch."""

    def __init__(self, futures: set[Future], return_when: str):
        self.return_when = return_when
        pending = [f.keystate for f in futures if not f.done()]
        if return_when == FIRST_COMPLETED and len(pending) < len(futures) or \
                return_when == FIRST_EXCEPTION and any(f.done() and f.status not in _NOT_FAILED
                                                       for f in futures):
            pending = []  # satisfied already
        self.pending = pending
        self._all_done = AllDone(pending)
        self._not_finished = pending  # for FIRST_EXCEPTION: the keys not yet seen finished

    def __call__(self) -> bool:
        if self._all_done():
            return True
        if self.return_when == FIRST_COMPLETED:
            return any(state.done for state in self.pending)
        if self.return_when == FIRST_EXCEPTION:
            self._not_finished = [state for state in self._not_finished
                                  if state.status not in _NOT_FAILED]
            return any(state.done for state in self._not_finished)
        return False


class as_completed:  # noqa: N801 -- named like concurrent.futures.as_completed
    """Iterate over futures as they finish; ``add()`` more while iterating.

    ``with_results=True`` yields ``(future, result)``; a failed future raises its error then,
    or with ``raise_errors=False`` yields ``(future, (type, exception, traceback))``, as
    dask's does; a cancelled one yields ``(future, CancelledError())`` either way (nothing
    failed). ``timeout`` counts from this call, as in ``concurrent.futures.as_completed``:
    past it, asking for a future not yet done raises ``TimeoutError``. ``async for``
    iterates on an event loop without blocking it.
    """

    def __init__(self, futures: Iterable[Future] = (), with_results: bool = False,
                 raise_errors: bool = True, timeout: float | None = None):
        self.with_results = with_results
        self.raise_errors = raise_errors
        self.timeout = given_timeout("timeout", timeout)
        self._deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._generation = 0  # futures added before the last clear() are not yielded
        # The event loop of an ``async for`` waiting for the next future, and its wake-up.
        self._loop_waiting: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        for future in futures:
            self.add(future)

    def add(self, future: Future | concurrent.futures.Future) -> None:
        if not isinstance(future, concurrent.futures.Future):
            # (before it is counted: one never done would keep the iteration waiting)
            raise TypeError(f"as_completed takes futures, not {type(future).__name__} "
                            f"({future!r:.60})")
        with self._lock:
            self._outstanding += 1
            generation = self._generation
        if isinstance(future, Future):
            future.keystate.on_done(lambda: self._finished(future, generation))
        else:  # a future of another executor
            future.add_done_callback(lambda _: self._finished(future, generation))

    def _finished(self, future: Future | concurrent.futures.Future, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._done.put(future)
            waiting, self._loop_waiting = self._loop_waiting, None
        if waiting is not None:
            loop, event = waiting
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nobody waits on it any more
                pass

    def clear(self) -> None:
        """Forget every future added: none is yielded any more, done or not."""
        with self._lock:
            self._generation += 1
            self._outstanding = 0
            while not self._done.empty():
                self._done.get_nowait()

    def has_ready(self) -> bool:
        """Whether a future has finished that iterating would yield now, without waiting."""
        return not self._done.empty()

    def update(self, futures: Iterable[Future]) -> None:
        for future in futures:
            self.add(future)

    def count(self) -> int:
        with self._lock:
            return self._outstanding

    def is_empty(self) -> bool:
        return self.count() == 0

    def __repr__(self) -> str:
        done = self._done.qsize()
        return f"<as_completed: waiting={self.count() - done} done={done}>"

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self.is_empty():
            raise StopIteration
        try:
            try:
                future = self._done.get_nowait()
            except queue.Empty:
                with task_context.slot_given_back():
                    future = self._done.get(timeout=self._left())
        except queue.Empty:
            raise self._timed_out() from None
        with self._lock:
            self._outstanding -= 1
        if not self.with_results:
            return future
        failure = _failure(future)
        if failure is None:
            return future, future.result()
        return future, self._reported(future, failure)

    def _left(self) -> float | None:
        """Seconds left until the deadline (None: no deadline)."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def _timed_out(self) -> TimeoutError:
        return timeouts.TimeoutError(f"{self.count()} futures not done within "
                                     f"{self.timeout} s of as_completed()")

    def _reported(self, future: Any, failure: BaseException) -> Any:
        """What ``with_results=True`` yields beside a future that gave no value -- or raises:
        a failed one's error unless ``raise_errors=False``."""
        if _cancelled(future):
            return failure
        if self.raise_errors:
            raise failure
        traceback = failure.__traceback__
        if isinstance(future, Future):  # (the frames where the task raised, on its worker)
            traceback = future.traceback() or traceback
        return type(failure), failure, traceback

    def __aiter__(self) -> as_completed:
        return self

    async def __anext__(self) -> Any:
        if self.is_empty():
            raise StopAsyncIteration
        while True:
            try:
                future = self._done.get_nowait()
                break
            except queue.Empty:
                pass
            event = asyncio.Event()
            with self._lock:  # (``_finished`` puts and wakes under it: no wake-up is lost)
                registered = self._done.empty()
                if registered:
                    self._loop_waiting = (asyncio.get_running_loop(), event)
            if not registered:
                continue
            left = self._left()
            if left == 0:
                raise self._timed_out()
            try:
                await timeouts.wait_for(event.wait(), left)
            except TimeoutError:
                pass  # (the deadline is checked again above)
        with self._lock:
            self._outstanding -= 1
        if not self.with_results:
            return future
        failure = _failure(future)
        if failure is None:
            if isinstance(future, Future):
                return future, await future
            return future, future.result()  # (done: this does not block)
        return future, self._reported(future, failure)

    def batches(self) -> Iterator[list]:
        """The futures (or ``(future, result)`` pairs) in lists of all that finished since
        the last list, each list as soon as one has: ``for batch in ac.batches(): ...``."""
        while not self.is_empty():
            yield self.next_batch(block=True)

    def next_batch(self, block: bool = True) -> list:
        """Everything finished so far (at least one when ``block``)."""
        batch = [next(self)] if block and not self.is_empty() else []
        while not self.is_empty():
            try:
                future = self._done.get_nowait()
            except queue.Empty:
                break
            self._done.put(future)
            batch.append(next(self))
        return batch


def _failure(future: Any) -> BaseException | None:
    """Why a done future did not give a value (None if it did)."""
    if isinstance(future, Future):
        return None if future.status == "finished" else future.keystate.failure
    if future.cancelled():
        return concurrent.futures.CancelledError()
    return future.exception()


def _cancelled(future: Any) -> bool:
    return future.status == "cancelled" if isinstance(future, Future) else future.cancelled()


__all__ = ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "DoneAndNotDone", "wait",
           "as_completed"]
