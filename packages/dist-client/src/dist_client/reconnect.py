"""Getting the connection to the center back after it was lost (a center restarted, a network
blip): tries with exponential backoff until a deadline, as dask's Client does.

What the client held before the loss is settled by the Executor once connected again: a new
center starts empty, so futures whose keys it does not know err with ``CenterLostError``
(a ``LostDataError``); new work goes to the new center on the same Executor.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from dist_protocol.comm import Comm
from dist_protocol.errors import AuthenticationError, HandshakeError, VersionMismatch

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


__all__ = ["MAX_DELAY", "until_connected"]
