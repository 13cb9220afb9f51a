"""Requests and their replies, matched by ``id``: one place for what clients and workers do
whenever they ask a peer something (who-has, get-data, put-data, cluster-info...).

A request message carries an ``id`` chosen by the asker; the reply carries it back. Nothing
here reads or writes a socket: the connection's ``send`` is called, and the connection's
handler hands the messages it receives to ``received``.
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .messages import Message
from .timeouts import wait_for


class Sender(Protocol):
    def send(self, *messages: Message) -> Any: ...


class PendingReplies:
    """The requests awaiting a reply, on one event loop, over any number of connections."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[Sender, asyncio.Future[Message]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    async def request(self, comm: Sender, make: Callable[[int], Message],
                      timeout: float | None = None) -> Message:
        """Send ``make(id)`` on ``comm`` and return the reply with that id. It raises what
        ``fail`` is given (a lost connection, say), or ``TimeoutError`` after ``timeout``."""
        request_id = next(self._ids)
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (comm, reply)
        try:
            comm.send(make(request_id))
            return await wait_for(reply, timeout)
        finally:
            self._pending.pop(request_id, None)

    def received(self, message: Message) -> bool:
        """Hand over a message that came in: True if it was the reply to a pending request
        (False for anything else, such as a reply coming after its request gave up)."""
        request_id = getattr(message, "id", None)
        if not isinstance(request_id, int):
            return False
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return False
        reply = pending[1]
        if not reply.done():
            reply.set_result(message)
        return True

    def received_all(self, messages: Iterable[Message]) -> list[Message]:
        """``received`` for each message; returns those that were not replies."""
        return [message for message in messages if not self.received(message)]

    def fail(self, error: BaseException, comm: Sender | None = None) -> None:
        """The requests sent on ``comm`` (on any connection, if None) raise ``error``: their
        replies cannot come any more."""
        for request_id, (owner, reply) in list(self._pending.items()):
            if comm is None or owner is comm:
                del self._pending[request_id]
                if not reply.done():
                    reply.set_exception(error)


__all__ = ["PendingReplies", "Sender"]
