"""The worker's connections to its peers, for the inputs it fetches from them: the comm layer's
``ConnectionPool``, asked with a message whose ``id`` it fills in.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from dist_protocol.comm import Comm, ConnectionPool
from dist_protocol.environment import Environment
from dist_protocol.errors import CommClosedError
from dist_protocol.messages import Message


def _peer_closed(comm: Comm) -> Exception:
    return CommClosedError(f"peer closed: {comm.close_reason}")


class Peers:
    def __init__(self, open_connection: Callable[[str], Awaitable[Comm]]) -> None:
        # (``open_connection``: the handshake with the worker's token, TLS and limits)
        self._pool = ConnectionPool(open_connection, _peer_closed)

    async def request(self, address: str, message: Message, timeout: float = 300) -> Any:
        """Send a request with an ``id`` to a peer and wait for its reply."""
        return await self._pool.request(
            address, lambda request_id: dataclasses.replace(message, id=request_id),  # type: ignore[type-var]
            timeout)

    def environment_of(self, address: str) -> Environment | None:
        """What the peer at ``address`` said it runs, while connected (``None``: unknown)."""
        return self._pool.peer_environment(address)

    def close(self) -> None:
        self._pool.close()
