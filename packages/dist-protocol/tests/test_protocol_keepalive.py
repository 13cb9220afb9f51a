"""Connections are probed by the kernel when idle, on both sides: a peer whose host vanished
without a word is found out, instead of being waited on for ever."""
from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from dist_protocol.comm import connect, listen
from dist_protocol.comm.protocol import (KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES,
                                         UNACKNOWLEDGED_LIMIT)

pytestmark = pytest.mark.timeout(60)


def probing(comm) -> tuple[int, ...]:
    sock = comm.transport.get_extra_info("socket")
    got = [bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))]
    for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"):
        if hasattr(socket, name):
            got.append(sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)))
    return tuple(got)


@contextlib.asynccontextmanager
async def both_ends():
    """A client's comm and the listener's comm for it, closed after."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()
    listener = await listen("127.0.0.1:0", accepted.set_result)
    comm = await connect(listener.address, role="client")
    server_side = await asyncio.wait_for(accepted, 10)
    try:
        yield comm, server_side
    finally:
        comm.close()
        listener.close()


def test_both_ends_of_a_connection_are_probed_when_idle(run):
    expected = (True, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES)

    async def main():
        async with both_ends() as ends:
            for end in ends:
                assert probing(end) == expected[:len(probing(end))]

    run(main())


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux's option")
def test_both_ends_give_up_on_what_the_peer_never_acknowledges(run):
    """Probes are not sent while data waits for its acknowledgement (a reply to a client
    whose host vanished): then the limit on unacknowledged data ends the connection, in the
    probes' time rather than the kernel's quarter of an hour of retransmissions."""
    async def main():
        async with both_ends() as ends:
            for end in ends:
                sock = end.transport.get_extra_info("socket")
                limit_ms = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
                assert limit_ms == UNACKNOWLEDGED_LIMIT * 1000

    run(main())
