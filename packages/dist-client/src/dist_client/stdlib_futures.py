"""How ``concurrent.futures.wait`` and ``as_completed`` see a dist Future.

Those two functions do not use the public Future API: they take ``f._condition`` of each
future, read ``f._state`` under it, and append a waiter object to ``f._waiters``, which the
standard Future notifies as it finishes. A dist Future is a ``concurrent.futures.Future`` (so
the standard functions accept it), and this mixin gives it those three private attributes as
views of the key's state; the waiters are notified through ``KeyState.on_done``, the hook every
other wait uses. Nothing else in dist reads them.
"""
from __future__ import annotations

import threading
from concurrent.futures import _base

from .core.keystate import KeyState


class StdlibWaitable:
    """The private attributes ``concurrent.futures.wait``/``as_completed`` read, for a class
    whose instances have a ``keystate`` and a ``_stdlib_waiters`` slot."""

    keystate: KeyState
    _stdlib_waiters: list | None

    @property
    def _condition(self) -> threading.Condition:
        # Built on the key's lock, which the status changes under: while the standard
        # functions hold it, the key cannot settle between their check and their waiter.
        return threading.Condition(self.keystate.lock)

    @property
    def _state(self) -> str:
        status = self.keystate.status
        if status == "pending":
            return _base.PENDING
        if status == "cancelled":
            return _base.CANCELLED_AND_NOTIFIED
        return _base.FINISHED

    @property
    def _waiters(self) -> list:
        # Installed under the key's lock (the standard functions hold ``_condition``): if the
        # key is pending here, the callback added below is called when it settles.
        if self._stdlib_waiters is None:
            self._stdlib_waiters = []
        if self.keystate.status == "pending":
            self.keystate.forget(self._notify_stdlib_waiters)
            self.keystate.on_done(self._notify_stdlib_waiters)
        return self._stdlib_waiters

    def _notify_stdlib_waiters(self) -> None:
        status = self.keystate.status
        for waiter in list(self._stdlib_waiters or ()):
            if status == "finished":
                waiter.add_result(self)
            elif status == "cancelled":
                waiter.add_cancelled(self)
            else:
                waiter.add_exception(self)


__all__ = ["StdlibWaitable"]
