"""What the client knows of one key, and the one hook that announces its settling."""
from __future__ import annotations

import concurrent.futures
import copy
import logging
from _thread import RLock
from collections.abc import Callable

from dist_protocol.key_names import user_key
from dist_protocol.serialize import Payload

log = logging.getLogger("dist_client")

STATUSES = ("pending", "finished", "error", "lost", "cancelled")


class KeyState:
    """What the client knows of one key; every Future of that key shares it.

    Waiting for a key is a callback on its settling, called from the thread that settles it
    (usually the client's I/O thread): ``on_done`` callbacks are called once, as
    ``concurrent.futures`` calls done callbacks; ``watch`` callbacks at every settling until
    ``unwatch`` (a key whose result is lost is computed again and settles once more), which
    is what the waiters of ``waiters.py`` use.
    """

    __slots__ = ("key", "status", "exception", "traceback", "type", "type_pickled", "nbytes",
                 "workers", "small", "callbacks", "watchers", "refs")

    # Held while a status changes and while callbacks are added, so a callback added to a
    # pending key is always called; re-entrant, since a callback may add another. One for
    # every key: nothing is called while it is held, and a lock of each key's own was one
    # more object per key held (64 bytes) for the cyclic collector to walk on each of its
    # full passes, which a long map's growing count of keys sets off. (``_thread``'s:
    # ``threading.RLock`` is a Python function around it.)
    lock = RLock()

    # How many keys have failed in this process so far: a waiter that stops at the first
    # failure looks through its keys only when this has moved, not at every settling.
    failures = 0
    # Called at every failure of any key: a waiter for "all done or one failed" watches
    # these and one key at a time, not each of its keys. Replaced under ``lock``, never
    # changed in place, so a failure reads it without the lock.
    failure_watchers: list[Callable[[], object]] = []

    def __init__(self, key: str):
        self.key = key
        self.status = "pending"
        self.exception: BaseException | None = None
        self.traceback = ""
        self.type = ""  # the name of the value's class
        # The class itself, pickled, as the worker sent it (None from older workers, or a
        # class that did not pickle small): unpickled only when ``Future.type`` is read.
        self.type_pickled: bytes | None = None
        self.nbytes = 0
        self.workers: tuple[str, ...] = ()
        # A small value as the center passed it on (serialized): read without a fetch.
        # Kept as its one pickle frame when it is one (most are), see ``small_value``;
        # ``transfer.load_one`` reads either form.
        self.small: Payload | bytes | None = None
        # Made on first use, and dropped once empty again: a client holds a million keys at
        # a time, and each list less is one object less for the cyclic collector to walk.
        self.callbacks: list[Callable[[], object]] | None = None
        self.watchers: list[Callable[[], object]] | None = None
        # How many handles (Futures, mostly) the client holds on the key: counted by the
        # client's state (``ClientState.hold``), here rather than in a dict of its own.
        self.refs = 0

    def __repr__(self) -> str:  # (what ``Executor.futures`` shows of a key)
        return f"<KeyState: {self.status}, key: {self.key}>"

    @property
    def small_value(self) -> Payload | None:
        """A small value as the center passed it on (serialized): read without a fetch."""
        small = self.small
        if type(small) is bytes:
            return Payload("pickle", [small])
        return small  # type: ignore[return-value]

    @small_value.setter
    def small_value(self, payload: Payload | bytes | None) -> None:
        # A map's keys each hold their value for as long as the user holds the futures: a
        # ``Payload`` and its list of frames are two objects a key for the cyclic collector
        # to walk on each of its full passes, which a long map's growing count of keys sets
        # off (the client's largest cost on a map of 40,000). The usual payload, one pickle
        # frame of bytes, is kept as those bytes, which the collector does not track.
        if (isinstance(payload, Payload) and payload.serializer == "pickle"
                and payload.compression is None and len(payload.frames) == 1
                and type(payload.frames[0]) is bytes):
            self.small = payload.frames[0]
        else:
            self.small = payload

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def _settle(self, status: str) -> None:
        with self.lock:
            self.status = status
            callbacks, self.callbacks = self.callbacks, None
            if self.watchers:
                callbacks = [*(callbacks or ()), *self.watchers]
        if callbacks:
            for callback in callbacks:
                # What a callback raises is logged, as concurrent.futures does: keys settle
                # on the client's I/O thread, which not even SystemExit may stop.
                try:
                    callback()
                except BaseException:
                    log.exception("a done callback raised")

    def finish(self, nbytes: int, type_: str, workers: list[str] | None,
               small_value: Payload | None = None, type_pickled: bytes | None = None) -> None:
        self.nbytes, self.type, self.type_pickled = nbytes, type_, type_pickled
        if workers:
            self.workers = tuple(workers)
        self.small_value = small_value
        self.exception = None
        self._settle("finished")

    @property
    def failure(self) -> BaseException:
        """The exception to raise for a key that is not finished (pending reads as not done
        yet): a copy of the stored one each time (see ``to_raise``)."""
        if self.exception is not None:
            return to_raise(self.exception)
        return concurrent.futures.InvalidStateError(f"{user_key(self.key)} is {self.status}")

    def fail(self, exception: BaseException, traceback: str = "", status: str = "error") -> None:
        self.exception, self.traceback = exception, traceback
        self.workers = ()
        self.small = None
        self._settle(status)
        # Counted once the status is set: a waiter on another thread that sees the count
        # move must find the failure when it looks, or it would take this failure as seen.
        KeyState.failures += 1
        for callback in KeyState.failure_watchers:
            try:
                callback()
            except BaseException:
                log.exception("a failure watcher raised")

    def recomputing(self) -> None:
        """The center lost the data and computes it again: pending until it is back."""
        with self.lock:
            if self.status != "finished":
                return
            self.status = "pending"
            self.workers = ()
            self.small = None

    def reset(self) -> None:
        """Back to pending (e.g. resubmitted after a failure)."""
        with self.lock:
            self.status = "pending"
            self.exception = None
            self.small = None

    def on_done(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once the key settles: at once, in this thread, if it has."""
        with self.lock:
            if self.status == "pending":
                if self.callbacks is None:
                    self.callbacks = []
                self.callbacks.append(callback)
                return
        try:  # already settled: called here, in the caller's thread, as concurrent.futures does
            callback()
        except Exception:
            log.exception("a done callback raised")

    def forget(self, callback: Callable[[], object]) -> None:
        """Do not call the ``on_done`` ``callback`` after all."""
        with self.lock:
            if self.callbacks and callback in self.callbacks:
                self.callbacks.remove(callback)
                if not self.callbacks:
                    self.callbacks = None

    def watch(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` each time the key settles, until ``unwatch``."""
        with self.lock:
            if self.watchers is None:
                self.watchers = []
            self.watchers.append(callback)

    @classmethod
    def watch_failures(cls, callback: Callable[[], object]) -> None:
        """Call ``callback()`` each time any key fails, until ``unwatch_failures``."""
        with cls.lock:
            cls.failure_watchers = [*cls.failure_watchers, callback]

    @classmethod
    def unwatch_failures(cls, callback: Callable[[], object]) -> None:
        with cls.lock:
            watchers = list(cls.failure_watchers)
            if callback in watchers:
                watchers.remove(callback)
            cls.failure_watchers = watchers

    def unwatch(self, callback: Callable[[], object]) -> None:
        with self.lock:
            if self.watchers and callback in self.watchers:
                self.watchers.remove(callback)
                if not self.watchers:
                    self.watchers = None



def to_raise(exception: BaseException) -> BaseException:
    """A copy of ``exception`` to raise. Raised, an exception keeps the frames it passes
    through in its traceback, the caller's with their locals: were the stored one raised, the
    key's state would keep the caller's frame, and with it the future and the executor there,
    alive as long as the client's I/O thread runs -- its key, and a dropped executor's whole
    session, held on the center for ever. The exception itself where it cannot be copied."""
    try:
        copied = copy.copy(exception)
    except Exception:  # noqa: BLE001 -- an __init__ its args do not fit, a __reduce__ that fails
        return exception
    if type(copied) is not type(exception):
        return exception
    copied.__cause__ = exception.__cause__
    copied.__context__ = exception.__context__
    copied.__suppress_context__ = exception.__suppress_context__
    notes = getattr(exception, "__notes__", None)
    if isinstance(notes, list):
        # (a note added to what was raised stays there)
        setattr(copied, "__notes__", list(notes))  # noqa: B010 -- unknown to 3.10
    return copied.with_traceback(exception.__traceback__)


__all__ = ["KeyState", "STATUSES", "to_raise"]
