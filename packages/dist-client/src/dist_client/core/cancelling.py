"""Cancelling and retrying futures: their side at once (a cancelled future fails with its
``CancelledError``, a retried one is pending again), the center's through the core (the keys'
cancel or retry queued in order with the rest), and, for a blocking cancel, the wait for the
center's answer (``ClientCore.cancels_heard``, notified as it arrives)."""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Protocol

from dist_protocol.comm import Comm
from dist_protocol.key_names import user_key
from dist_protocol.messages import Message, Retry

from ..errors import ClusterError
from ..future import Future
from ..packing import futures_of
from .keystate import KeyState
from .loop import LoopThread
from .state import ClientState


class Core(Protocol):
    """What cancelling needs of its client's core (``core.client.ClientCore``)."""

    center: Comm | None
    address: str
    timeout: float
    lock: threading.RLock  # (the state's: see ClientCore)
    cancels_heard: threading.Condition
    state: ClientState
    io: LoopThread

    @property
    def status(self) -> str: ...
    def until_connected(self) -> None: ...
    def queue_now(self, message: Message) -> None: ...
    def cancel_keys(self, keys: list[str], pending_only: bool = False,
                    force: bool = False) -> None: ...


class Cancelling:
    """The cancels and retries of one client (from any thread)."""

    def __init__(self, core: Core):
        self._core = core

    def cancel(self, futures: Any, force: bool = False, wait: bool = True,
               reason: str | None = None, msg: str | None = None) -> None:
        """Stop work not yet started for these futures (also those inside containers and
        persisted dask collections) and release their keys; ``force``: for every holder.
        ``wait``: return once the center has answered (``until_heard``).
        ``reason`` and ``msg`` (dask's) go into the futures' ``CancelledError``."""
        core = self._core
        center = core.center
        if force and center is not None and "cancel-force" not in center.features:
            raise ClusterError(f"the center at {core.address} cannot cancel for other clients "
                               "(an older release: it did not announce the protocol feature "
                               "'cancel-force'); cancel without force=True")
        keys = self._cancel_states([future.keystate for future in futures_of(futures)], force,
                                   _why(reason, msg))
        if wait and keys:
            self.until_heard(keys, core.timeout)

    def until_heard(self, keys: list[str], timeout: float) -> bool:
        """Block until the center has answered the cancel of ``keys`` (False after
        ``timeout``, or once the connection is lost). Its answer names the tasks it cancelled
        with them, as dask's blocking ``cancel`` has them cancelled before it returns: a
        pipeline submitted again right after cancelling it is then new work, not futures that
        the answer still on its way would cancel."""
        core = self._core
        if core.io.in_loop_thread:
            return False  # the answer is read on this thread: it cannot come while it waits
        center = core.center
        with core.lock:
            return core.cancels_heard.wait_for(
                lambda: core.center is not center or core.status != "running"
                or not any(key in core.state.cancels_unconfirmed for key in keys), timeout)

    def retry(self, futures: Any) -> None:
        """Run again the tasks of these futures that failed (and the failed inputs behind
        them); their futures are pending until the tasks settle again."""
        states = [f.keystate for f in futures_of(futures) if f.keystate.status == "error"]
        if not states:
            return
        core = self._core
        center = core.center
        if center is not None and "retry" not in center.features:
            raise ClusterError(f"the center at {core.address} cannot retry tasks (an older "
                               "release: it did not announce the protocol feature 'retry')")
        core.until_connected()
        with core.lock:
            for state in states:
                state.reset()
            core.queue_now(Retry(keys=list(dict.fromkeys(s.key for s in states))))

    def cancel_unstarted(self, futures: list[Future] | None = None) -> None:
        """Cancel the futures (default: every one held) whose tasks have not started."""
        core = self._core
        with core.lock:
            if futures is None:
                states = core.state.pending()
            else:
                states = [f.keystate for f in futures if not f.done()]
        keys = list(dict.fromkeys(state.key for state in states))
        if not keys:
            return
        center = core.center
        if center is not None and "cancel-pending-only" in center.features:
            # Only the center knows which have started: it cancels the others and tells us.
            core.cancel_keys(keys, pending_only=True)
        else:  # an older center cannot tell running tasks apart: cancel them all
            self._cancel_states(states)

    def _cancel_states(self, states: list[KeyState], force: bool = False,
                       why: str = "") -> list[str]:
        # Finished ones too, as dask's: the center releases their keys, so a "finished"
        # future would have had a value nobody holds any more, its result() waiting for ever.
        for state in states:
            if state.status != "cancelled":
                state.fail(concurrent.futures.CancelledError(
                    f"{user_key(state.key)} was cancelled{why}"), status="cancelled")
        keys = list(dict.fromkeys(state.key for state in states))
        if keys:
            self._core.cancel_keys(keys, force=force)
        return keys


def _why(reason: str | None, msg: str | None) -> str:
    """What a cancel's ``reason`` and ``msg`` (dask's) add to its futures' error text."""
    return (f": {reason}" if reason else "") + (f"\n{msg}" if msg else "")


__all__ = ["Cancelling"]
