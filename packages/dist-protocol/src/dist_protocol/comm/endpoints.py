"""Opening connections: ``connect`` (an initiator's side) and ``listen`` (a server's), each
running the handshake before the ``Comm`` is handed on."""
from __future__ import annotations

import asyncio
import copy
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..addresses import format_address, parse_address
from ..connection import Connection
from ..environment import local_environment
from ..errors import CommClosedError, HandshakeError, ProtocolError
from ..features import connecting_features, default_features
from ..framing import DEFAULT_LIMITS, Limits
from ..defaults import HANDSHAKE_TIMEOUT
from ..timeouts import wait_for
from ..handshake import (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, AcceptorHandshake,
                         InitiatorHandshake)
from .core import Comm
from .protocol import StreamProtocol

log = logging.getLogger("dist.comm")


async def run_handshake(comm: Comm, timeout: float) -> None:
    """Wait for the handshake the comm's connection runs as the bytes arrive."""
    finished = comm.handshake_finished
    if finished is None:  # closed before we got here
        if comm.abort_error is not None:
            raise copy.copy(comm.abort_error)
        raise CommClosedError(f"connection to {comm.peer_address} closed"
                              + (f": {comm.close_reason}" if comm.close_reason else ""))
    try:
        try:
            await wait_for(finished, timeout)
        finally:
            del finished  # a failed future refers to its error, whose traceback to here
    except TimeoutError:
        comm.abort(HandshakeError(f"no handshake within {timeout:g} s", "handshake-timeout"))
        raise HandshakeError(f"handshake with {comm.peer_address} timed out after {timeout:g} s",
                             "handshake-timeout") from None
    except ProtocolError as exc:
        if not comm.is_closed:
            comm.abort(exc)
        raise
    except CommClosedError:
        if comm.abort_error is not None:  # the peer's bytes broke a limit or the framing
            raise copy.copy(comm.abort_error) from None  # keep the stored one traceback-free
        raise


async def connect(address: str, *, role: str, token: str | None = None,
                  name: str | None = None, ssl_context: ssl.SSLContext | None = None,
                  timeout: float = HANDSHAKE_TIMEOUT, limits: Limits = DEFAULT_LIMITS,
                  versions: tuple[int, int] | None = None,
                  features: Iterable[str] | None = None) -> Comm:
    """Open a connection and complete the handshake; raises ``OSError`` or ``HandshakeError``.

    ``features``: the optional protocol features to announce (default: all this package
    implements, or those ``DIST_PROTOCOL_FEATURES`` names, but those announced only on request,
    ``features.ON_REQUEST``); ``comm.features`` is the agreed set.
    """
    scheme, host, port = parse_address(address)
    if scheme == "tls" and ssl_context is None:
        raise ValueError(f"{address} is a TLS address: give a TLS certificate and CA "
                         "(--tls-cert/--tls-key/--tls-ca)")
    loop = asyncio.get_running_loop()
    handshake = InitiatorHandshake(role, token=token, name=name,
                                   versions=versions or (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
                                   features=connecting_features() if features is None else features,
                                   environment=local_environment())
    comm = Comm(loop, Connection(handshake, limits=limits))
    tls = ssl_context if scheme == "tls" else None
    server_hostname = None
    if tls is not None:
        # Without a cluster CA the server is checked against the system's CAs, by host name.
        server_hostname = host if tls.check_hostname else ""
    await wait_for(loop.create_connection(lambda: StreamProtocol(comm), host, port, ssl=tls,
                                          server_hostname=server_hostname,
                                          ssl_handshake_timeout=timeout if tls else None),
                   timeout, f"no connection to {address} within {timeout:g} s")
    comm.peer_address = format_address(host, port, scheme)
    try:
        await run_handshake(comm, timeout)
    except CommClosedError as exc:
        # With TLS 1.3 a server checks the client's certificate after the client's side of the
        # TLS handshake is done, so a refused certificate shows up here, as a plain close.
        hint = ("; over TLS this is how a server refuses a client without a certificate its CA "
                "signed (see --tls-cert/--tls-key)" if tls is not None else "")
        raise HandshakeError(f"{address} closed the connection during the handshake: {exc}"
                             f"{hint}", "handshake-failed") from None
    except HandshakeError as exc:
        if exc.code == "handshake-timeout":
            # Connected, and nothing came back: a center or worker answers at once.
            raise HandshakeError(f"{exc.message}: the server accepted the connection but "
                                 "never answered as a dist center or worker does -- is it "
                                 "one (not the dashboard's port, say), and is it running "
                                 "(not stopped or overloaded)?", exc.code) from None
        raise
    except ProtocolError as exc:  # e.g. the server sent more than an unauthenticated peer may
        raise HandshakeError(f"{address} broke the protocol during the handshake: "
                             f"{exc.message}", exc.code) from None
    return comm


class Listener:
    def __init__(self, server: asyncio.AbstractServer, address: str):
        self.server = server
        self.address = address
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        return parse_address(self.address)[2]

    def close(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()


async def listen(address: str, on_comm: Callable[[Comm], Awaitable[None] | None], *,
                 token: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 limits: Limits = DEFAULT_LIMITS, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 who: str = "server", features: Iterable[str] | None = None,
                 sock: socket.socket | None = None) -> Listener:
    """Serve ``address``; ``on_comm(comm)`` runs for each connection that completes the handshake.

    ``sock``: a socket already listening on ``address`` (see ``listening_socket``), served
    instead of binding a new one.

    ``who`` is this server's role (``center``, ``worker``): messages the catalogue does not let
    a peer send to it are refused. A peer that fails the handshake gets an ``error`` message and
    one log line; nothing else. A TLS handshake has the same time limit as ours.
    """
    scheme, host, port = parse_address(address, default_port=0)
    if scheme == "tls" and ssl_context is None:
        raise ValueError(f"{address} is a TLS address: give --tls-cert and --tls-key")
    loop = asyncio.get_running_loop()
    listener: Listener
    announced = default_features() if features is None else frozenset(features)
    environment = local_environment()

    def new_comm() -> Comm:
        handshake = AcceptorHandshake(token=token, who=who, features=announced,
                                      environment=environment)
        return Comm(loop, Connection(handshake, who=who, limits=limits))

    async def accept(comm: Comm) -> None:
        try:
            await run_handshake(comm, handshake_timeout)
        except ProtocolError as exc:
            log.warning("refused connection from %s: %s (%s)", comm.peer_address, exc.message,
                        exc.code)
            if not comm.is_closed:  # an abort lets its error message reach the peer first
                comm.close()
            return
        except CommClosedError:
            # Port scanners and load-balancer health checks connect and leave: not a warning.
            log.info("connection from %s closed during the handshake", comm.peer_address)
            return
        result = on_comm(comm)
        if asyncio.iscoroutine(result):
            await result

    def on_made(comm: Comm) -> None:
        task = loop.create_task(accept(comm))
        listener.tasks.add(task)
        task.add_done_callback(listener.tasks.discard)

    tls = ssl_context if scheme == "tls" else None
    tls_timeout = handshake_timeout if tls else None
    if sock is not None:
        server = await loop.create_server(lambda: StreamProtocol(new_comm(), on_made), sock=sock,
                                          ssl=tls, ssl_handshake_timeout=tls_timeout,
                                          backlog=1024)
    else:
        server = await loop.create_server(lambda: StreamProtocol(new_comm(), on_made), host,
                                          port, ssl=tls, ssl_handshake_timeout=tls_timeout,
                                          reuse_address=True, backlog=1024)
    bound = server.sockets[0].getsockname()
    listener = Listener(server, format_address(bound[0], bound[1], scheme))
    return listener
