"""asyncio's side of a ``Comm``: the ``BufferedProtocol`` that reads straight into the
connection's buffers and hands the comm what arrived and what the transport reports."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from ..addresses import format_address
from .core import Comm

# A peer whose host vanishes (powered off, cut off by a firewall or a NAT that forgot the
# connection) sends nothing, not even a close: a client would wait on its center for ever,
# and a center hold a vanished client's keys for ever. So the kernel probes a connection idle
# this many seconds, then every KEEPALIVE_INTERVAL, and ends it after KEEPALIVE_PROBES
# unanswered probes (about two minutes in all). A live peer's kernel answers them however
# busy the peer is.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_PROBES = 6
# The probes are sent only while nothing we sent waits for the peer's acknowledgement: with
# data outstanding (a gather's reply, a key-in-memory to a vanished client) the kernel
# retransmits instead, for 15 minutes and more by default, and the connection's buffers and
# the peer's keys stay held all that time. So data left unacknowledged this long ends the
# connection too, as the probes would (a live peer's kernel acknowledges what it received,
# and answers the window probes of a peer that reads slowly, however busy the process is).
UNACKNOWLEDGED_LIMIT = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES  # seconds


class StreamProtocol(asyncio.BufferedProtocol):
    """asyncio's side of a ``Comm``: bytes in and out, nothing decided here."""

    def __init__(self, comm: Comm, on_made: Callable[[Comm], None] | None = None):
        self.comm = comm
        self.on_made = on_made
        # What arrived goes to the comm without a call of this protocol's in between: a
        # transport looks ``buffer_updated`` up on the protocol, once per read (asyncio's) or
        # once per connection (uvloop's), and finds the comm's own method here.
        self.buffer_updated = comm.bytes_received  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        comm = self.comm
        comm.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if isinstance(peer, tuple):
            comm.peer_address = format_address(peer[0], peer[1])
        if isinstance(sock, tuple):
            comm.local_address = format_address(sock[0], sock[1])
            keep_alive(transport.get_extra_info("socket"))
        comm.flush()  # an initiator's hello
        if self.on_made is not None:
            self.on_made(comm)

    def get_buffer(self, sizehint: int) -> memoryview:
        # Straight to the decoder (what ``Connection.get_buffer`` does): once per read.
        return self.comm.connection.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:  # (shadowed per instance: ``__init__``)
        self.comm.bytes_received(nbytes)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.comm.transport_lost(exc)

    def pause_writing(self) -> None:
        self.comm.writing_paused()

    def resume_writing(self) -> None:
        self.comm.writing_resumed()


def keep_alive(sock: Any) -> None:
    """Have the kernel probe the TCP connection ``sock`` when it is idle (see
    ``KEEPALIVE_IDLE``) and end it when what was sent stays unacknowledged (see
    ``UNACKNOWLEDGED_LIMIT``); where an option is missing (not Linux), what the system
    offers."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE),
                            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                            ("TCP_KEEPCNT", KEEPALIVE_PROBES),
                            ("TCP_USER_TIMEOUT", UNACKNOWLEDGED_LIMIT * 1000)):  # (in ms)
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:  # (a socket closed meanwhile): the connection works on without probes
        pass
