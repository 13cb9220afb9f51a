"""The client's decisions, without I/O, threads or clocks: which keys it holds and how often,
in what order its submits, cancels and releases reach the center, which of the center's
messages are news for a key, and what a lost connection does to the keys.

Events go in as method calls (``hold``, ``hold_many``, ``unhold``, ``queue``, ``cancel``,
``center_sent``, ``center_lost``) and, for Futures dropped, as entries of ``dropped``; what
the client must do comes out: messages to send (``take_outbox``) and orders to settle keys
(``Finish``, ``Fail``, ``Recompute``, ``Reply``). The Executor serialises calls under one
lock (but for ``dropped``'s appends) and carries the orders out on its I/O thread.
"""
from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Union

from dist_protocol.key_names import user_key
from dist_protocol.messages import (Cancel, KeyCancelled, KeyInMemory, KeyLost, KeyRecomputing,
                                    Message, Release, Submit, TaskErred)

from ..actors import lost_error
from ..errors import CenterLostError, released_error
from ..task_errors import exception_from
from .keystate import KeyState


@dataclass
class Finish:
    """The key is in memory on the cluster."""
    state: KeyState
    message: KeyInMemory


@dataclass
class Fail:
    """The key will not be computed (as things stand): settle it with ``exception``."""
    state: KeyState
    exception: BaseException
    traceback: str = ""
    status: str = "error"


@dataclass
class Recompute:
    """The cluster lost the key's data and computes it again: pending once more."""
    state: KeyState


@dataclass
class Reply:
    """A reply to a request (matched by its id elsewhere)."""
    message: Message


Order = Union[Finish, Fail, Recompute, Reply]


class ClientState:
    """Keys, their reference counts and the outbox to the center of one client."""

    def __init__(self, make_state: Callable[[str], KeyState] = KeyState):
        self._make_state = make_state
        # The keys held, each with its count of handles (``KeyState.refs``).
        self.states: dict[str, KeyState] = {}
        # The states of Futures dropped and not yet counted off: appended from any thread
        # without the client's lock (``deque.append`` is atomic), taken in bulk by the next
        # call here (see ``take_drops``). A map's futures dropped together are then one pass
        # through the lock and no calls each, not a pass and five calls a Future.
        self.dropped: collections.deque[KeyState] = collections.deque()
        # Messages for the center in the order they were decided, and the keys to release
        # after them (see ``_queue_release``).
        self._outbox: list[Message] = []
        self._releases: dict[str, None] = {}
        # Whether the client is connected: a center forgets a client's keys with its
        # connection, so keys let go meanwhile are not released to it (``unhold``).
        self.releasing = True
        # Keys this client cancelled whose key-cancelled has not come back yet: that echo
        # carries no news, and must not cancel the same key submitted again meanwhile.
        self.cancels_unconfirmed: collections.Counter[str] = collections.Counter()

    # -- references -----------------------------------------------------------------------------
    @property
    def refs(self) -> dict[str, int]:
        """The handles on each key held (dropped Futures counted off)."""
        self.take_drops()
        return {key: state.refs for key, state in self.states.items()}

    def hold(self, key: str, state: KeyState | None = None) -> KeyState:
        """One more handle on ``key``: its shared state (``state``, if the key is new)."""
        if self.dropped:
            self.take_drops()
        known = self.states.get(key)
        if known is None:
            known = self.states[key] = state or self._make_state(key)
        known.refs += 1
        return known

    def hold_many(self, keys: list[str]) -> list[KeyState]:
        """One more handle on each of ``keys`` (a key given twice: two): their states, in
        order. ``hold`` for each, in one pass (a map's futures)."""
        if self.dropped:
            self.take_drops()
        states = self.states
        make = self._make_state
        held = []
        for key in keys:
            known = states.get(key)
            if known is None:
                known = states[key] = make(key)
            known.refs += 1
            held.append(known)
        return held

    def unhold(self, key: str, release: bool = True, state: KeyState | None = None) -> bool:
        """One handle fewer (on ``state``, the one the handle holds, if given); the last one
        forgets the key and, with ``release`` (False while not connected: a center forgets
        a client's keys with its connection), tells the center. True: a release was queued
        (the outbox is to be flushed soon)."""
        if self.dropped:
            self.take_drops()
        held = self.states.get(key)
        if state is not None and state is not held:
            state.refs -= 1  # a cancelled life of a key submitted again since: nothing held
            return False
        state = held
        if state is None:
            return False
        state.refs -= 1
        if state.refs > 0:
            return False
        del self.states[key]
        if not release:
            return False
        self._queue_release(key)
        return True

    def unhold_released(self, state: KeyState, release: bool = True) -> tuple[bool, Fail | None]:
        """``unhold`` for a Future its holder released (``Future.release``). Left pending with
        no handle, the key will never settle here: an order to cancel it too, for whoever
        still waits through that handle (a thread in its ``result()``), as dask cancels a
        key its client releases."""
        queued = self.unhold(state.key, release, state)
        if state.refs > 0 or state.done or self.states.get(state.key) is state:
            return queued, None
        return queued, Fail(state, released_error(user_key(state.key)), status="cancelled")

    def take_drops(self) -> bool:
        """Count off the handles of the Futures dropped since last time (``dropped``): as
        ``unhold`` for each, while ``releasing`` says whether to tell the center. Called by
        every method here before it reads or changes the keys held, so that a dropped
        Future's key is gone for whoever looks next. True: a release was queued."""
        dropped, states, releases = self.dropped, self.states, self._releases
        queued = False
        while dropped:
            state = dropped.popleft()
            state.refs -= 1
            if state.refs > 0:
                continue
            key = state.key
            if states.get(key) is state:
                del states[key]
                if self.releasing:
                    # (``_queue_release``, written out: a map's keys are released by the
                    # thousand)
                    releases[key] = None
                    queued = True
        return queued

    def _queue_release(self, key: str) -> None:
        # A release never overtakes a submit queued before it, which may name the key as a
        # dependency. Later submits may overtake it (a key released a little later changes
        # nothing for them) unless they name the key as their task or a wanted key: the keys
        # released between a chain's submits go in one message after them, and the submits
        # in a row (one column block). Anything else queued takes them along first.
        self._releases[key] = None

    def release_before_later_submits(self) -> None:
        """The releases queued so far reach the center before any message queued after
        this, submits too (see ``get``)."""
        self.take_drops()
        if self._releases:
            self._outbox.append(Release(keys=list(self._releases)))
            self._releases = {}

    def held(self) -> list[str]:
        self.take_drops()
        return list(self.states)

    def hold_all(self) -> list[KeyState]:
        """One more handle on every key held: their states, followed until each is let go
        (``unhold``) whatever becomes of their Futures meanwhile. For a wait on all of them
        (a shutdown's): a Future dropped during it (collected in a cycle, say) would
        otherwise release its pending key, whose state nothing would then settle."""
        self.take_drops()
        states = list(self.states.values())
        for state in states:
            state.refs += 1
        return states

    def held_states(self) -> dict[str, KeyState]:
        """The keys held and their states (the dict itself: read it under the client's
        lock)."""
        self.take_drops()
        return self.states

    def pending(self) -> list[KeyState]:
        self.take_drops()
        return [state for state in self.states.values() if not state.done]

    # -- what to tell the center ----------------------------------------------------------------
    def holds(self, key: str) -> bool:
        self.take_drops()
        return key in self.states

    def keys_to_submit(self, keys: Iterable[str], renew: tuple[str, ...] = ("cancelled",)
                       ) -> list[str]:
        """Of ``keys`` about to be submitted, those the center must be told of: new ones, and
        those whose status is in ``renew`` (cancelled ones, by default: a new life, pending
        again), or that failed with the center they were submitted to (``CenterLostError``:
        the center reconnected to does not know them, and the error says to submit them
        again, as dask's client forgets its futures when it reconnects). Each key is named
        once, however often it is given.

        A cancelled key's new life is a state of its own, made when the new Futures hold
        it: the Futures cancelled stay cancelled, as a ``concurrent.futures`` future does
        once done (the new task may even join the cancelled run still on its worker, whose
        value is then the new Futures', not theirs)."""
        if self.dropped:
            self.take_drops()
        out = []
        for key in dict.fromkeys(keys):
            state = self.states.get(key)
            if state is not None and state.status == "cancelled" and "cancelled" in renew:
                # (the old Futures' handles are counted off their own state: ``unhold``
                # and ``take_drops`` release a key only for the state it holds now)
                del self.states[key]
                state = None
            elif state is not None and (state.status in renew
                                      or type(state.exception) is CenterLostError):
                if state.status == "error" and type(state.exception) is not CenterLostError:
                    # The center keeps an erred key's error for whoever submits it: release
                    # it first, so the submit that follows is a new task, not the old failure.
                    self._queue_release(key)
                state.reset()
                state = None
            if state is None:
                out.append(key)
        return out

    def hold_to_submit(self, key: str) -> tuple[KeyState, bool]:
        """``keys_to_submit`` and ``hold`` for one key (a lone submit): its state, held once
        more, and whether the center must be told of it."""
        new = bool(self.keys_to_submit((key,)))
        return self.hold(key), new

    def queue(self, *messages: Message) -> bool:
        """Messages for the center, after everything queued before. True: flush soon."""
        if self.dropped:
            self.take_drops()
        releases = self._releases
        if releases and not all(type(m) is Submit and _names_none(m, releases)
                                for m in messages):
            self._outbox.append(Release(keys=list(releases)))
            self._releases = {}
        self._outbox.extend(messages)
        return bool(messages)

    def cancel(self, keys: list[str], pending_only: bool = False, force: bool = False) -> bool:
        """Ask the center to cancel ``keys`` (``force``: for every holder); its echo of a full
        cancel is expected."""
        if not pending_only:
            self.cancels_unconfirmed.update(keys)
        return self.queue(Cancel(keys=keys, pending_only=True) if pending_only
                          else Cancel(keys=keys, force=True) if force else Cancel(keys=keys))

    def has_outbox(self) -> bool:
        """Whether anything (a release, say) is queued for the center."""
        self.take_drops()
        return bool(self._outbox or self._releases)

    def take_outbox(self) -> list[Message]:
        """Everything queued, as messages, in order; the outbox is empty afterwards."""
        if self.dropped:
            self.take_drops()
        items, self._outbox = self._outbox, []
        if self._releases:
            items.append(Release(keys=list(self._releases)))
            self._releases = {}
        return items

    def put_back(self, messages: list[Message]) -> None:
        """Messages that could not be sent (no connection): first in line next time."""
        self._outbox[:0] = messages

    # -- what the center says -------------------------------------------------------------------
    def center_sent(self, messages: Iterable[Message]) -> list[Order]:
        """The orders that the center's ``messages`` amount to, in order."""
        orders: list[Order] = []
        if self.dropped:
            self.take_drops()
        states = self.states
        for msg in messages:
            if isinstance(msg, KeyInMemory):
                state = states.get(msg.key)
                if state is not None:
                    orders.append(Finish(state, msg))
            elif isinstance(msg, TaskErred):
                state = states.get(msg.key)
                if state is not None:
                    orders.append(Fail(state, exception_from(msg), msg.traceback))
            elif isinstance(msg, KeyRecomputing):
                state = states.get(msg.key)
                if state is not None:
                    orders.append(Recompute(state))
            elif isinstance(msg, KeyLost):
                state = states.get(msg.key)
                if state is not None:
                    orders.append(Fail(state, lost_error(msg.message), status="lost"))
            elif isinstance(msg, KeyCancelled):
                if self._confirms_own_cancel(msg.key):
                    continue
                state = states.get(msg.key)
                # Finished too: the center cancels what it holds only when it forgets it
                # (another client restarted the cluster), and then the value is gone.
                if state is not None and state.status in ("pending", "finished"):
                    orders.append(Fail(state, CancelledError(f"{user_key(msg.key)} was cancelled"),
                                       status="cancelled"))
            else:
                orders.append(Reply(msg))
        return orders

    def _confirms_own_cancel(self, key: str) -> bool:
        pending = self.cancels_unconfirmed.get(key, 0)
        if not pending:
            return False
        if pending == 1:
            del self.cancels_unconfirmed[key]
        else:
            self.cancels_unconfirmed[key] = pending - 1
        return True

    def center_lost(self, error: BaseException) -> tuple[list[Fail], list[str]]:
        """The connection to the center is gone, and work in flight with it: the keys not
        done fail with ``error``; the keys done are returned, to be checked with the center
        reconnected to."""
        self.take_drops()
        fails = [Fail(state, error, status="error") for state in self.pending()]
        done = [key for key, state in self.states.items() if state.done]
        return fails, done

    def cancel_everything(self, why: str, finished_too: bool = False) -> list[Fail]:
        """Orders that cancel the keys not done (and with ``finished_too`` those finished)."""
        self.take_drops()
        return [Fail(state, CancelledError(f"{user_key(state.key)} was cancelled: {why}"),
                     status="cancelled")
                for state in self.states.values()
                if not state.done or (finished_too and state.status == "finished")]


def _names_none(submit: Submit, keys: dict[str, None]) -> bool:
    """Whether ``submit`` names none of ``keys`` as one of its tasks or a key it wants."""
    if any(task.key in keys for task in submit.tasks):
        return False
    return not submit.wanted or not any(key in keys for key in submit.wanted)
