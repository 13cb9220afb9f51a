"""asyncio's side of a ``Comm``: the ``BufferedProtocol`` that reads straight into the
connection's buffers and hands the comm what arrived and what the transport reports."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..addresses import format_address
from .core import Comm


class StreamProtocol(asyncio.BufferedProtocol):
    """asyncio's side of a ``Comm``: bytes in and out, nothing decided here."""

    def __init__(self, comm: Comm, on_made: Callable[[Comm], None] | None = None):
        self.comm = comm
        self.on_made = on_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        comm = self.comm
        comm.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if isinstance(peer, tuple):
            comm.peer_address = format_address(peer[0], peer[1])
        if isinstance(sock, tuple):
            comm.local_address = format_address(sock[0], sock[1])
        comm.flush()  # an initiator's hello
        if self.on_made is not None:
            self.on_made(comm)

    def get_buffer(self, sizehint: int) -> memoryview:
        # Straight to the decoder (what ``Connection.get_buffer`` does): once per read.
        return self.comm.connection.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.comm.bytes_received(nbytes)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.comm.transport_lost(exc)

    def pause_writing(self) -> None:
        self.comm.writing_paused()

    def resume_writing(self) -> None:
        self.comm.writing_resumed()
