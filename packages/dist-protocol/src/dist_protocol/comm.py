"""The asyncio comm layer -- the only module of dist-protocol that does I/O.

A ``Comm`` is a thin transport around a sans-I/O ``Connection`` (``connection.py``), which owns
the decoder, the handshake, the limits and the validation of what is sent. Reads go straight
into the decoder's buffers (``BufferedProtocol``), so a large frame lands in its own buffer with
no copy. Writes are batched without a timer: ``send`` queues the message and the first ``send``
of a loop iteration schedules one flush for the next, so everything sent in one pass of the
event loop travels in one batch and nothing waits when the connection is idle.
"""
from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import logging
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from .addresses import format_address, is_loopback_host, parse_address
from .compression import choose, compress_payload, preference
from .connection import COALESCE_BELOW, MAX_FRAMES_PER_BATCH, Connection
from .environment import local_environment
from .errors import CommClosedError, HandshakeError, ProtocolError
from .features import default_features
from .framing import DEFAULT_LIMITS, FrameDecoder, Limits
from .handshake import (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, AcceptorHandshake,
                        InitiatorHandshake)
from .messages import Data, Environment, Error, Message, PutData

log = logging.getLogger("dist.comm")

HANDSHAKE_TIMEOUT = 10.0
# How long an aborted connection stays half-open so that its error message reaches the peer.
ABORT_LINGER = 2.0
__all__ = ["ABORT_LINGER", "COALESCE_BELOW", "Comm", "HANDSHAKE_TIMEOUT", "Listener",
           "MAX_FRAMES_PER_BATCH", "connect", "listen", "new_event_loop", "raise_open_file_limit",
           "run", "tune_garbage_collector"]

Handler = Callable[[list[Message]], object]  # what a handler returns is not used


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed, else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; returns the soft limit.

    Every connection holds a file descriptor: at the common default of 1024, a server would stop
    accepting anyone after that many idle or hostile connections.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is not a valid soft limit everywhere (macOS caps it at OPEN_MAX).
    targets = [hard] if hard != resource.RLIM_INFINITY else [2**20, 10240]
    for target in targets:
        if soft != resource.RLIM_INFINITY and target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            continue
    return soft


# Young-generation collections every 50,000 allocations rather than 700: a server holding
# 100,000 tasks allocates in bursts of mostly long-lived objects, and with the default the
# collector's passes over them cost it 40% of its throughput.
SERVER_GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """For the center's and workers' own processes; clients leave the user's settings alone."""
    import gc

    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def run(main: Coroutine[Any, Any, Any]) -> object:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)




def _between_hosts(address: str) -> bool:
    """Whether ``address`` is another host's (not loopback, not an in-memory peer's "?")."""
    try:
        _, host, _ = parse_address(address)
    except ValueError:
        return False
    return not is_loopback_host(host)


def _compression_preference() -> str:
    """``DIST_COMPRESSION`` as this process reads it; a value it cannot read is said once
    and read as ``auto`` (the command-line tools refuse it at start)."""
    try:
        return preference()
    except ValueError as exc:
        if not _warned_preference:
            _warned_preference.append(True)
            log.error("%s; compressing as with auto", exc)
        return "auto"


_warned_preference: list[bool] = []


def compressed(msg: Message, codec: str = "lz4") -> Message:
    """``msg`` with the payloads of the bulk data ops (``data``, ``put-data``) compressed
    with ``codec`` where that pays; other messages as they are."""
    if not isinstance(msg, (Data, PutData)) or not msg.data:
        return msg
    data = {key: compress_payload(payload, codec) for key, payload in msg.data.items()}
    if all(data[key] is payload for key, payload in msg.data.items()):
        return msg
    return dataclasses.replace(msg, data=data)


class Comm:
    """One connection: batched ``send``, ``recv`` or a handler for what arrives, ``close``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connection: Connection):
        self.loop = loop
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.peer_address = "?"
        self.local_address = "?"
        # What the handshake settled, kept after the connection lets go of its state.
        self.peer_role: str | None = None
        self.peer_name: str | None = None
        self.version: int | None = None
        self.features: frozenset[str] = frozenset()  # the optional features both sides announced
        self.codec: str | None = None  # data sent is compressed with it where it pays
        self.peer_environment: Environment | None = None  # what the peer said it runs
        self.established = False  # the handshake completed
        self.closed: asyncio.Future[Any] = loop.create_future()
        self.close_reason: str | None = None
        self.abort_error: ProtocolError | None = None  # what we closed the connection for
        self.peer_error: Error | None = None  # what the peer closed the connection for
        self._flush_scheduled = False
        # Sends from other threads (``write_now``) and the loop's own flushes take turns here.
        self._write_lock = threading.Lock()
        self._fd: int | None = None  # a descriptor of the socket that other threads write to
        self._rest: list[Any] = []  # what a thread's write left unwritten, for the loop
        self._inbox: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[Any] | None = None
        self._handler: Handler | None = None
        self._on_close: list[Callable[[Comm], None]] = []
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[Any]] = []
        self._handshake_finished: asyncio.Future[Any] | None = loop.create_future()

    def __repr__(self) -> str:
        return f"<Comm {self.peer_role or 'peer'} {self.peer_address}>"

    @property
    def compresses(self) -> bool:
        return self.codec is not None

    @property
    def is_closed(self) -> bool:
        return self.closed.done()

    @property
    def decoder(self) -> FrameDecoder:
        return self.connection.decoder

    # -- sending ---------------------------------------------------------------------------
    def send(self, *messages: Message) -> None:
        """Queue messages for this loop pass's batch; ``LocalProtocolError`` for one the
        protocol does not allow here (nothing is queued then)."""
        if self.closed.done():
            raise CommClosedError(f"connection to {self.peer_address} is closed"
                                  + (f": {self.close_reason}" if self.close_reason else ""))
        codec = self.codec
        if codec is not None:
            messages = tuple(compressed(msg, codec) for msg in messages)
        with self._write_lock:
            self.connection.send(*messages)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self.loop.call_soon(self._flush)

    def write_now(self, *messages: Message) -> bool:
        """From a thread other than the loop's: encode ``messages`` and write them to the
        socket in this thread, now, when nothing is waiting to be written before them -- no
        wake-up of the loop, no thread switch. False (nothing done) when they must go through
        the loop instead: something is queued or buffered, the connection is closing, or it
        is not a plain socket (TLS, in memory), or ``write_from_threads`` was not called.
        ``LocalProtocolError`` as ``send``."""
        if self._fd is None:
            return False
        with self._write_lock:
            transport, fd = self.transport, self._fd
            if (fd is None or self._flush_scheduled or self._rest
                    or self.connection.wants_to_send or self.closed.done()
                    or transport is None or transport.is_closing()
                    or transport.get_write_buffer_size()):
                return False
            codec = self.codec
            if codec is not None:
                messages = tuple(compressed(msg, codec) for msg in messages)
            self.connection.send(*messages)
            buffers = self.connection.data_to_send()
            try:
                written = os.writev(fd, buffers)
            except OSError:  # (would block, or broken) the loop writes it and sees the error
                written = 0
            self._rest = _unwritten(buffers, written)
            if not self._rest:
                return True
            self._flush_scheduled = True
        self.loop.call_soon_threadsafe(self._flush)
        return True

    def write_from_threads(self) -> None:
        """On the loop: let ``write_now`` write from other threads. They write to a descriptor
        of their own (a duplicate), which the loop closing the transport cannot free for
        another connection to reuse while a thread is about to write to it."""
        if self._fd is None and self.transport is not None and not self.closed.done():
            fd = _socket_fd(self.transport)
            if fd is not None:
                self._fd = os.dup(fd)

    def _stop_thread_writes(self) -> None:
        with self._write_lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def flush(self) -> None:
        """Write what was sent so far now, not on the loop's next pass: before something that
        may end this process, so that the peer still receives it."""
        if self.connection.wants_to_send or self._rest:
            self._flush()

    def send_threadsafe(self, *messages: Message) -> None:
        self.loop.call_soon_threadsafe(self._send_quietly, messages)

    def _send_quietly(self, messages: tuple[Any, ...]) -> None:
        if not self.closed.done():
            self.send(*messages)

    def _flush(self) -> None:
        with self._write_lock:
            self._flush_scheduled = False
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            rest, self._rest = self._rest, []
            for buf in rest + self.connection.data_to_send() if rest \
                    else self.connection.data_to_send():
                # transports take bytes, bytearrays and memoryviews, not any buffer (a frame
                # received into a memory map, forwarded)
                transport.write(buf if isinstance(buf, (bytes, bytearray, memoryview))
                                else memoryview(buf))

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._write_paused and not self.closed.done():
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    # -- receiving -------------------------------------------------------------------------
    def set_handler(self, handler: Handler) -> None:
        """Call ``handler(messages)`` for each batch from now on (queued ones first)."""
        if not self.closed.done():  # a closed comm keeps no closure over itself (``_let_go``)
            self._handler = handler
        if self._inbox:
            queued = list(self._inbox)
            self._inbox.clear()
            handler(queued)

    def on_close(self, callback: Callable[[Comm], None]) -> None:
        if self.closed.done():
            self.loop.call_soon(callback, self)
        else:
            self._on_close.append(callback)

    async def recv(self) -> Message:
        while not self._inbox:
            if self.closed.done():
                raise CommClosedError(f"connection to {self.peer_address} closed"
                                      + (f": {self.close_reason}" if self.close_reason else ""))
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._inbox.popleft()

    # -- what the transport reports (``_StreamProtocol``) ---------------------------------
    def bytes_received(self, nbytes: int) -> None:
        """``nbytes`` arrived in the connection's buffer: one batch at a time, in order, each
        delivered before the next is judged, so that the first violation in the stream is the
        one reported and a batch that closes the connection ends it there."""
        connection = self.connection
        connection.buffer_updated(nbytes)
        while True:
            messages = connection.next_batch()
            if messages is None:
                return
            if connection.wants_to_send:  # a handshake step to answer
                self._flush()
            if not self.established and connection.established:
                self._handshake_done()
            if messages:
                self._deliver(messages)
            if connection.peer_error is not None:
                self._closed_by_peer(connection.peer_error)
                return
            if self.closed.done() or (self.transport and self.transport.is_closing()):
                return

    def transport_lost(self, exc: Exception | None) -> None:
        self._closed(exc)

    def writing_paused(self) -> None:
        self._write_paused = True

    def writing_resumed(self) -> None:
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _deliver(self, messages: list[Message]) -> None:
        if self._handler is not None:
            self._handler(messages)
            return
        self._inbox.extend(messages)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- the handshake -----------------------------------------------------------------------
    def _handshake_done(self) -> None:
        connection = self.connection
        self.version, self.features = connection.version, connection.features
        # Between hosts only: on loopback a compressor costs more than the copy saves.
        if _between_hosts(self.peer_address):
            self.codec = choose(self.features, _compression_preference())
        self.peer_environment = connection.peer_environment
        if connection.peer_role is not None:
            self.peer_role, self.peer_name = connection.peer_role, connection.peer_name
        self.established = True
        finished = self._handshake_finished
        if finished is not None and not finished.done():
            finished.set_result(None)

    @property
    def handshake_finished(self) -> asyncio.Future[Any] | None:
        """Done when the handshake completed (or failed); None once the comm closed."""
        return self._handshake_finished

    def _fail_handshake(self, error: Exception) -> None:
        waiter = self._handshake_finished
        if not self.established and waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _closed_by_peer(self, error: Error) -> None:
        """The peer ends the connection and says why: that, not the end of stream or reset
        that follows, is the reason our side reports."""
        self.peer_error = error
        log.info("%s closed the connection: %s (%s)", self.peer_address, error.message,
                 error.code)
        self.close(f"{self.peer_address} closed the connection: {error.message} ({error.code})")

    # -- closing ---------------------------------------------------------------------------
    def abort(self, error: ProtocolError) -> None:
        """Tell the peer what it did wrong, then close. Costs this connection only."""
        if self.abort_error is None:
            # A copy: the error itself is raised on, and its traceback reaches this comm.
            self.abort_error = copy.copy(error)
        if self.established:
            # A failed handshake is reported once, by whoever ran it (``listen`` logs one line,
            # ``connect`` raises), so an attacker's connection costs a single log line.
            log.warning("closing connection with %s: %s (%s)", self.peer_address,
                        error.message, error.code)
        reason = f"{error.code}: {error.message}"
        transport = self.transport
        self._fail_handshake(error)
        if transport is None or transport.is_closing() or self.closed.done():
            self.close(reason)
            return
        self.connection.send_error(error)
        self._flush()
        # Closing now, with the peer's bytes unread in our receive buffer, would make the kernel
        # reset the connection, and a reset discards the error message on its way. So: no more
        # writes, drop what arrives, and close once the peer has hung up or after a moment.
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(ABORT_LINGER, transport.close)
        self.close_reason = self.close_reason or reason
        self._closed(None)

    def close(self, reason: str | None = None) -> None:
        if self.connection.wants_to_send or self._rest:
            self._flush()
        if reason and self.close_reason is None:
            self.close_reason = reason
        if self.transport is not None:
            self.transport.close()
        else:
            self._closed(None)

    def _closed(self, exc: Exception | None) -> None:
        if self.closed.done():
            return
        if self.close_reason is None and exc is not None:
            self.close_reason = str(exc)
        self.closed.set_result(self.close_reason)
        self._stop_thread_writes()
        self._fail_handshake(CommClosedError(f"connection to {self.peer_address} closed"
                                             + (f": {self.close_reason}" if self.close_reason
                                                else "")))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # one bad callback must not hide the others
                log.exception("error in close callback of %r", self)
        self._let_go()

    def _let_go(self) -> None:
        """Drop what a closed connection no longer needs, and with it every reference cycle.

        Handlers and callbacks are closures over this comm, and a stored exception's
        traceback reaches it through the frames that raised it: cycles that only a full
        collection frees, rare on servers (``tune_garbage_collector``), so every closed
        connection kept its receive buffer. What was received stays readable by ``recv``.
        """
        self._handler = None
        finished, self._handshake_finished = self._handshake_finished, None
        if finished is not None and finished.done() and not finished.cancelled():
            # Read, so asyncio does not warn: a handshake not awaited yet learns the
            # outcome from ``abort_error`` (see ``_run_handshake``).
            finished.exception()
        self._drain_waiters = []
        # Bytes that still arrive (an abort lingers) are dropped unread into a small buffer.
        self.connection.release()


def _unwritten(buffers: list[Any], written: int) -> list[Any]:
    """What is left of ``buffers`` after their first ``written`` bytes."""
    for i, buf in enumerate(buffers):
        view = memoryview(buf).cast("B")
        if written < view.nbytes:
            return [view[written:], *buffers[i + 1:]]
        written -= view.nbytes
    return []


def _socket_fd(transport: asyncio.BaseTransport) -> int | None:
    """The descriptor another thread may write this transport's bytes to: a plain TCP or
    Unix socket's, not a TLS connection's (its bytes must pass through the TLS layer)."""
    if transport.get_extra_info("sslcontext") is not None \
            or transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    try:
        return None if sock is None else sock.fileno()
    except (OSError, AttributeError):
        return None


class _StreamProtocol(asyncio.BufferedProtocol):
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
        return self.comm.connection.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        comm = self.comm
        if comm.closed.done() or comm.transport is None or comm.transport.is_closing():
            return  # after an abort, whatever else arrives is dropped unread
        try:
            comm.bytes_received(nbytes)
        except ProtocolError as exc:
            comm.abort(exc)
        except Exception as exc:  # a bug handling one peer must not stop the server
            log.exception("internal error handling a message from %s", comm.peer_address)
            comm.abort(ProtocolError(f"internal error: {type(exc).__name__}: {exc}",
                                     "internal-error"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.comm.transport_lost(exc)

    def pause_writing(self) -> None:
        self.comm.writing_paused()

    def resume_writing(self) -> None:
        self.comm.writing_resumed()


async def _run_handshake(comm: Comm, timeout: float) -> None:
    """Wait for the handshake the comm's connection runs as the bytes arrive."""
    finished = comm.handshake_finished
    if finished is None:  # closed before we got here
        if comm.abort_error is not None:
            raise copy.copy(comm.abort_error)
        raise CommClosedError(f"connection to {comm.peer_address} closed"
                              + (f": {comm.close_reason}" if comm.close_reason else ""))
    try:
        async with asyncio.timeout(timeout):
            try:
                await finished
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
    implements, or those ``DIST_PROTOCOL_FEATURES`` names); ``comm.features`` is the agreed set.
    """
    scheme, host, port = parse_address(address)
    if scheme == "tls" and ssl_context is None:
        raise ValueError(f"{address} is a TLS address: give a TLS certificate and CA "
                         "(--tls-cert/--tls-key/--tls-ca)")
    loop = asyncio.get_running_loop()
    handshake = InitiatorHandshake(role, token=token, name=name,
                                   versions=versions or (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
                                   features=default_features() if features is None else features,
                                   environment=local_environment())
    comm = Comm(loop, Connection(handshake, limits=limits))
    tls = ssl_context if scheme == "tls" else None
    server_hostname = None
    if tls is not None:
        # Without a cluster CA the server is checked against the system's CAs, by host name.
        server_hostname = host if tls.check_hostname else ""
    async with asyncio.timeout(timeout):
        await loop.create_connection(lambda: _StreamProtocol(comm), host, port, ssl=tls,
                                     server_hostname=server_hostname,
                                     ssl_handshake_timeout=timeout if tls else None)
    comm.peer_address = format_address(host, port, scheme)
    try:
        await _run_handshake(comm, timeout)
    except CommClosedError as exc:
        # With TLS 1.3 a server checks the client's certificate after the client's side of the
        # TLS handshake is done, so a refused certificate shows up here, as a plain close.
        hint = ("; over TLS this is how a server refuses a client without a certificate its CA "
                "signed (see --tls-cert/--tls-key)" if tls is not None else "")
        raise HandshakeError(f"{address} closed the connection during the handshake: {exc}"
                             f"{hint}", "handshake-failed") from None
    except HandshakeError:
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
                 who: str = "server", features: Iterable[str] | None = None) -> Listener:
    """Serve ``address``; ``on_comm(comm)`` runs for each connection that completes the handshake.

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
            await _run_handshake(comm, handshake_timeout)
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
    server = await loop.create_server(lambda: _StreamProtocol(new_comm(), on_made), host, port,
                                      ssl=tls, ssl_handshake_timeout=handshake_timeout if tls
                                      else None, reuse_address=True, backlog=1024)
    bound = server.sockets[0].getsockname()
    listener = Listener(server, format_address(bound[0], bound[1], scheme))
    return listener
