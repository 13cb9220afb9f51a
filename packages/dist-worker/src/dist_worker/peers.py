"""The worker's connections to its peers, for the inputs it fetches from them.

One connection per peer, opened once however many fetches ask for it meanwhile (they all
await the one attempt), its replies matched to the requests by id, and forgotten as it
closes, failing the requests still waiting on it. An attempt is forgotten once done, so peers
that came and went (each restart of a worker is a new address) leave nothing behind here.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from dist_protocol.comm import Comm
from dist_protocol.environment import Environment
from dist_protocol.errors import CommClosedError
from dist_protocol.messages import Message
from dist_protocol.replies import PendingReplies


class Peers:
    def __init__(self, open_connection: Callable[[str], Awaitable[Comm]]) -> None:
        self._open = open_connection  # the handshake with the worker's token, TLS and limits
        self._comms: dict[str, Comm] = {}
        self._connecting: dict[str, asyncio.Future[Comm]] = {}
        self._replies = PendingReplies()

    async def request(self, address: str, message: Message, timeout: float = 300) -> Any:
        """Send a request with an ``id`` to a peer and wait for its reply."""
        comm = await self._comm(address)
        return await self._replies.request(
            comm, lambda request_id: dataclasses.replace(message, id=request_id),  # type: ignore[type-var]
            timeout)

    def environment_of(self, address: str) -> Environment | None:
        """What the peer at ``address`` said it runs, while connected (``None``: unknown)."""
        comm = self._comms.get(address)
        return comm.peer_environment if comm is not None else None

    def close(self) -> None:
        for comm in list(self._comms.values()):
            comm.close()

    async def _comm(self, address: str) -> Comm:
        comm = self._comms.get(address)
        if comm is not None and not comm.is_closed:
            return comm
        connecting = self._connecting.get(address)
        if connecting is None:
            connecting = asyncio.ensure_future(self._connect(address))
            self._connecting[address] = connecting
            connecting.add_done_callback(partial(self._connected, address))
        return await asyncio.shield(connecting)

    async def _connect(self, address: str) -> Comm:
        comm = await self._open(address)
        comm.set_handler(self._replies.received_all)
        comm.on_close(self._closed)
        self._comms[address] = comm
        return comm

    def _connected(self, address: str, connecting: asyncio.Future) -> None:
        if self._connecting.get(address) is connecting:
            del self._connecting[address]
        if not connecting.cancelled():
            connecting.exception()  # (its callers got it; were they all gone, none did)

    def _closed(self, comm: Comm) -> None:
        for address, known in list(self._comms.items()):
            if known is comm:
                del self._comms[address]
        self._replies.fail(CommClosedError(f"peer closed: {comm.close_reason}"), comm)
