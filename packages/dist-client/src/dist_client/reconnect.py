"""Getting the connection to the center back after it was lost (a center restarted, a network
blip): tries with exponential backoff until a deadline, as dask's Client does.

What the client held before the loss is settled by the Executor once connected again. Every
connection opens a *session* (``session`` on the wire, where the center offers it): the center
names the client and says whether its state is durable (kept in a state directory across a
restart of its own). After losing a durable center, the client keeps its pending futures and
resumes the session on the new connection: the center still wants its keys, reports those
done, and finishes the rest. Otherwise -- a center that starts empty -- futures whose keys it
does not know err with ``CenterLostError`` (a ``LostDataError``); new work goes to the new
center on the same Executor either way.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from dist_protocol.comm import Comm
from dist_protocol.errors import (AuthenticationError, CommClosedError, HandshakeError,
                                  VersionMismatch)
from dist_protocol.messages import Session, SessionReply
from dist_protocol.replies import PendingReplies

from .errors import ClusterError

log = logging.getLogger("dist_client")

FIRST_DELAY = 0.05
MAX_DELAY = 2.0


async def until_connected(connect: Callable[[], Awaitable[Comm]], patience: float,
                          address: str) -> Comm:
    """``await connect()`` until it succeeds; raises ``ClusterError`` after ``patience``
    seconds of failures (naming the last error)."""
    give_up = time.monotonic() + patience
    delay = FIRST_DELAY
    attempts = 0
    while True:
        attempts += 1
        try:
            comm = await connect()
        except (AuthenticationError, VersionMismatch):
            raise  # another cluster, or one that refuses us: trying again cannot help
        except (ClusterError, OSError, TimeoutError, HandshakeError) as exc:
            if time.monotonic() + delay > give_up:
                raise ClusterError(f"could not reconnect to the center at {address} within "
                                   f"{patience:g} s ({attempts} attempts): {exc}") from None
            if attempts == 1:
                log.warning("lost the center at %s; reconnecting (%s)", address, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        log.warning("reconnected to the center at %s", address)
        return comm


class SessionInfo:
    """The session the center gave this client on its connection (none from an older
    center): its id, to resume it by, and whether the center's state survives a restart."""

    def __init__(self) -> None:
        self.client: str | None = None
        self.durable = False

    async def open(self, comm: Comm, replies: PendingReplies, timeout: float,
                   keys: list[str] | None = None) -> SessionReply | None:
        """Open this connection's session, resuming the previous one when there was one
        (``keys``: those held, for the center to say which it does not know). None from a
        center without sessions; ``CommClosedError``/``TimeoutError`` if it goes meanwhile."""
        if "sessions" not in comm.features:
            self.client, self.durable = None, False
            return None
        previous = self.client
        reply = await replies.request(
            comm, lambda i: Session(id=i, resume=previous,
                                    keys=keys if previous is not None else None), timeout)
        if not isinstance(reply, SessionReply):
            raise CommClosedError(f"the center answered session with {reply.op!r}")
        self.client, self.durable = reply.client, reply.durable
        return reply


__all__ = ["MAX_DELAY", "SessionInfo", "until_connected"]
