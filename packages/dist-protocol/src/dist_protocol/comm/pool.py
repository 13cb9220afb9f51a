"""Connections to peers, one per address, each a channel of requests answered by ``id``: what a
worker keeps to the peers it fetches inputs from, and a client to the workers it gathers from
and scatters to.

One connection per address, opened once however many requests ask for it meanwhile (they all
await the one attempt, and see its failure alike); a connection that closes is forgotten, and
the requests still waiting on it fail. An attempt is forgotten once done, so peers that came and
went (each restart of a worker is a new address) leave nothing behind.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

from ..errors import CommClosedError
from ..messages import Environment, Message
from ..replies import PendingReplies
from .core import Comm


def closed_connection_error(comm: Comm) -> Exception:
    """What a request waiting on ``comm`` raises when it closes."""
    return CommClosedError(f"connection to {comm.peer_address} closed: {comm.close_reason}")


class ConnectionPool:
    """``open_connection(address)`` makes a connection (the handshake with the token, TLS and
    limits it needs); ``closed_error(comm)`` is what the requests on one that closed raise."""

    def __init__(self, open_connection: Callable[[str], Awaitable[Comm]],
                 closed_error: Callable[[Comm], Exception] = closed_connection_error) -> None:
        self._open = open_connection
        self._closed_error = closed_error
        self._comms: dict[str, Comm] = {}
        self._connecting: dict[str, asyncio.Future[Comm]] = {}
        self._replies = PendingReplies()

    async def comm(self, address: str) -> Comm:
        """The connection to ``address``, opened if there is none."""
        comm = self._comms.get(address)
        if comm is not None and not comm.is_closed:
            return comm
        connecting = self._connecting.get(address)
        if connecting is None:
            connecting = asyncio.ensure_future(self._connect(address))
            self._connecting[address] = connecting
            connecting.add_done_callback(partial(self._connected, address))
        # (shielded: a request given up on does not end the attempt the others await)
        return await asyncio.shield(connecting)

    async def request(self, address: str, make: Callable[[int], Message],
                      timeout: float | None = None) -> Message:
        """Send ``make(id)`` to ``address`` and return the reply with that id (``TimeoutError``
        after ``timeout``)."""
        comm = await self.comm(address)
        return await self._replies.request(comm, make, timeout)

    def peer_environment(self, address: str) -> Environment | None:
        """What the peer at ``address`` said it runs, while connected (``None``: unknown)."""
        comm = self._comms.get(address)
        return comm.peer_environment if comm is not None else None

    def drop(self, address: str, reason: str) -> None:
        """Close the connection to ``address``; a later request opens a new one."""
        comm = self._comms.pop(address, None)
        if comm is not None:
            comm.close(reason)

    def close(self) -> None:
        for comm in list(self._comms.values()):
            comm.close()

    def addresses(self) -> set[str]:
        """The peers this holds anything for: a connection, or one being made."""
        return set(self._comms) | set(self._connecting)

    async def _connect(self, address: str) -> Comm:
        comm = await self._open(address)
        comm.set_handler(self._replies.received_all)
        comm.on_close(self._closed)
        self._comms[address] = comm
        return comm

    def _connected(self, address: str, connecting: asyncio.Future[Comm]) -> None:
        if self._connecting.get(address) is connecting:
            del self._connecting[address]
        if not connecting.cancelled():
            connecting.exception()  # (its callers got it; were they all gone, none did)

    def _closed(self, comm: Comm) -> None:
        for address, known in list(self._comms.items()):
            if known is comm:
                del self._comms[address]
        self._replies.fail(self._closed_error(comm), comm)


__all__ = ["ConnectionPool", "closed_connection_error"]
