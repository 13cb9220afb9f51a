"""``Comm``: one connection on the event loop, a thin transport around a sans-I/O ``Connection``
(``connection.py``), which owns the decoder, the handshake, the limits and the validation of
what is sent. Writes are batched without a timer: ``send`` queues the message and the first
``send`` of a loop iteration schedules one flush for the next, so everything sent in one pass of
the event loop travels in one batch and nothing waits when the connection is idle.
"""
from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from ..addresses import is_loopback_host, parse_address
from ..compression import choose, compress_payload, preference
from ..connection import Connection
from ..errors import CommClosedError, ProtocolError
from ..framing import FrameDecoder
from ..messages import Data, Environment, Error, Message, PutData
from .thread_writes import ThreadWrites

log = logging.getLogger("dist.comm")

# How long an aborted connection stays half-open so that its error message reaches the peer.
ABORT_LINGER = 2.0
# How long one connection's batches may keep the event loop before the other connections get
# their turn (a batch started is finished: this bounds the batches, not their handling).
TURN = 0.005

Handler = Callable[[list[Message]], object]  # what a handler returns is not used


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
        # Sends from other threads (``write_now``) and the loop's own flushes take turns under
        # its lock.
        self.thread_writes = ThreadWrites()
        self._inbox: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[Any] | None = None
        self._handler: Handler | None = None
        self._on_close: list[Callable[[Comm], None]] = []
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[Any]] = []
        self._handshake_finished: asyncio.Future[Any] | None = loop.create_future()
        self._turn_over = False  # reading paused until the loop's next pass (``TURN``)

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
        if self.thread_writes.enabled:
            with self.thread_writes.lock:
                self.connection.send(*messages)
                if self._flush_scheduled:
                    return
                self._flush_scheduled = True
        else:  # (only the loop's thread writes: no lock to take)
            self.connection.send(*messages)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self.loop.call_soon(self._flush)

    def write_now(self, *messages: Message, queued_first: bool = False) -> bool:
        """From a thread other than the loop's: encode ``messages`` and write them to the
        socket in this thread, now, when nothing is waiting to be written before them -- no
        wake-up of the loop, no thread switch. False (nothing done) when they must go through
        the loop instead: something is queued or buffered, the connection is closing, or it
        is not a plain socket (TLS, in memory), or ``write_from_threads`` was not called.
        ``queued_first``: what ``send`` queued (and a thread's write left) is written first,
        in this thread, rather than refused for -- for a thread that must be heard while the
        loop's thread is held up; what the transport itself buffered still refuses.
        ``LocalProtocolError`` as ``send``."""
        thread_writes = self.thread_writes
        if not thread_writes.enabled:
            return False
        with thread_writes.lock:
            transport = self.transport
            if (not thread_writes.enabled or self.abort_error is not None
                    or (not queued_first and (self._flush_scheduled or thread_writes.has_rest
                                              or self.connection.wants_to_send))
                    or self.closed.done()
                    or transport is None or transport.is_closing()
                    or transport.get_write_buffer_size()):
                return False
            codec = self.codec
            if codec is not None:
                messages = tuple(compressed(msg, codec) for msg in messages)
            self.connection.send(*messages)
            # (encoded before the rest is taken, as in ``_flush``)
            buffers = self.connection.data_to_send()
            rest = thread_writes.take_rest()
            if thread_writes.write(rest + buffers if rest else buffers):
                return True
            if self._flush_scheduled:  # (the loop writes what is left then)
                return True
            self._flush_scheduled = True
        self.loop.call_soon_threadsafe(self._flush)
        return True

    def write_from_threads(self) -> None:
        """On the loop: let ``write_now`` write from other threads. They write to a descriptor
        of their own (a duplicate), which the loop closing the transport cannot free for
        another connection to reuse while a thread is about to write to it."""
        if self.transport is not None and not self.closed.done():
            self.thread_writes.start(self.transport)

    def flush(self) -> None:
        """Write what was sent so far now, not on the loop's next pass: before something that
        may end this process, so that the peer still receives it."""
        if self.connection.wants_to_send or self.thread_writes.has_rest:
            self._flush()

    def send_threadsafe(self, *messages: Message) -> None:
        self.loop.call_soon_threadsafe(self._send_quietly, messages)

    def _send_quietly(self, messages: tuple[Any, ...]) -> None:
        if not self.closed.done():
            self.send(*messages)

    def _flush(self) -> None:
        thread_writes = self.thread_writes
        if not thread_writes.enabled:  # (only the loop's thread writes: no lock to take)
            self._flush_scheduled = False
            transport = self.transport
            if transport is not None and not transport.is_closing():
                buffers = self.connection.data_to_send()
                if len(buffers) == 1 and type(buffers[0]) is bytes:  # (a small batch, joined)
                    transport.write(buffers[0])
                else:
                    self._write(transport, buffers)
            return
        with thread_writes.lock:
            self._flush_scheduled = False
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            # Encoded before the rest is taken: should encoding raise, the rest of a batch a
            # thread began stays first in line, and the peer's stream stays in step.
            buffers = self.connection.data_to_send()
            rest = thread_writes.take_rest()
            self._write(transport, rest + buffers if rest else buffers)

    @staticmethod
    def _write(transport: asyncio.Transport, buffers: list[Any]) -> None:
        for buf in buffers:
            # transports take bytes, bytearrays and memoryviews, not any buffer (a frame
            # received into a memory map, forwarded)
            transport.write(buf if type(buf) is bytes
                            or isinstance(buf, (bytearray, memoryview)) else memoryview(buf))

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
            try:
                handler(queued)
            except Exception as exc:  # noqa: BLE001 -- as for any batch: see _failed
                self._failed(exc)

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

    # -- what the transport reports (``StreamProtocol``) ---------------------------------
    def bytes_received(self, nbytes: int) -> None:
        """``nbytes`` arrived in the connection's buffer: one batch at a time, in order, each
        delivered before the next is judged, so that the first violation in the stream is the
        one reported and a batch that closes the connection ends it there. After an abort,
        whatever else arrives is dropped unread."""
        transport = self.transport
        if self.closed.done() or transport is None or transport.is_closing():
            return
        try:  # (``_judge``, one call less on every read)
            self.connection.buffer_updated(nbytes)
            self._take_batches()
        except Exception as exc:  # noqa: BLE001 -- see _failed
            self._failed(exc)

    def _next_turn(self) -> None:
        if self.closed.done() or self.transport is None or self.transport.is_closing():
            return
        self._judge(0)

    def _judge(self, nbytes: int) -> None:
        """Take the ``nbytes`` just read (0: none, the next turn) and the batches buffered; what
        goes wrong costs this connection only."""
        try:
            if nbytes:
                self.connection.buffer_updated(nbytes)
            self._take_batches()
        except Exception as exc:  # noqa: BLE001 -- see _failed
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        """Handling this peer's bytes or messages raised ``exc``: the peer's fault (a
        ``ProtocolError``) or a bug of ours, it closes this connection only, never the server.
        Called in the ``except`` block, so the log has the traceback."""
        if isinstance(exc, ProtocolError):
            self.abort(exc)
            return
        log.exception("internal error handling a message from %s", self.peer_address)
        self.abort(ProtocolError(f"internal error: {type(exc).__name__}: {exc}",
                                 "internal-error"))

    def _take_batches(self) -> None:
        """The batches buffered, until this connection's turn is over (``TURN``): then
        reading pauses and the rest waits for the loop's next pass, after the other
        connections' turns -- a peer sending much cannot keep a newcomer's handshake, or
        another client's requests, waiting behind all of it."""
        connection = self.connection
        turn_ends = time.perf_counter() + TURN
        while True:
            messages = connection.next_batch()
            if messages is None:
                break
            if not self.established:
                if connection.wants_to_send:  # a handshake step to answer
                    self._flush()
                if connection.established:
                    self._handshake_done()
            if messages:
                handler = self._handler
                if handler is not None:
                    handler(messages)
                else:
                    self._deliver(messages)
            if connection.peer_error is not None:
                self._closed_by_peer(connection.peer_error)
                return
            transport = self.transport
            if self.closed.done() or (transport and transport.is_closing()):
                return
            if transport is not None and time.perf_counter() > turn_ends:
                if not self._turn_over:
                    self._turn_over = True
                    transport.pause_reading()
                self.loop.call_soon(self._next_turn)
                return
        if self._turn_over:
            self._turn_over = False
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()

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
        """No handler yet: ``messages`` wait for ``recv`` (or for the handler once set)."""
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
        # Under the lock threads write under: a thread's message is either whole on the wire
        # before the error or refused (``write_now`` sees ``abort_error``), never dropped or
        # written behind it.
        with self.thread_writes.lock:
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
        if self.connection.wants_to_send or self.thread_writes.has_rest:
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
        self.thread_writes.stop()
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
            # outcome from ``abort_error`` (see ``run_handshake``).
            finished.exception()
        self._drain_waiters = []
        # Bytes that still arrive (an abort lingers) are dropped unread into a small buffer.
        self.connection.release()
