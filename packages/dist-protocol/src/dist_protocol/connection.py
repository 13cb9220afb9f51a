"""One connection's protocol, without I/O: bytes in, messages out; messages in, bytes out.

As h11's ``Connection``: the asyncio transport (``comm/``), the fuzzer and the vector tests
all drive this object, so what they test is the code that runs.

* Receiving: fill ``get_buffer()`` and call ``buffer_updated(n)`` (or ``receive_data(bytes)``),
  then take ``next_batch()`` until it returns None. Batches are judged one at a time, in
  order: the first violation in the stream is the one raised, and the batch that completes
  the handshake raises the limits for the batches behind it.
* Sending: ``send(*messages)`` validates and queues; ``data_to_send()`` returns the buffers to
  write, everything queued so far as one batch (cut at ``MAX_FRAMES_PER_BATCH`` frames).
* The handshake runs inside: the initiator's ``hello`` is queued at construction, replies are
  queued as the peer's messages arrive, and ``established`` says when it is done.
* A violation raises a ``ProtocolError`` carrying the spec's error code: from ``next_batch``
  the peer broke the protocol (``RemoteProtocolError``, ``HandshakeError``), from ``send`` we
  were about to (``LocalProtocolError``). ``send_error`` queues the ``error`` message that ends
  the connection.
"""
from __future__ import annotations

import collections
import struct

from typing import Any

from .columns import FEATURE as COLUMNS
from .columns import FRAME_FEATURE as FRAME_COLUMNS
from .defaults import MAX_FRAMES_PER_BATCH
from .errors import FramingError, HandshakeError, InvalidMessage, LocalProtocolError, ProtocolError
from .framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, FrameDecoder, Limits
from .handshake import AcceptorHandshake, InitiatorHandshake
from .messages import (Authenticate, Authenticated, Environment, Error, Hello, Message, Welcome,
                       decode_batch, encode_batch, encode_batches)

# Small buffers are joined into one write; larger ones are written as they are (no copy).
COALESCE_BELOW = 64 * 1024
HANDSHAKE_MESSAGES = (Hello, Welcome, Authenticate, Authenticated)

# hello's role -> the sender name the message catalogue's directions use for that peer.
SENDER_OF_ROLE = {"client": "client", "worker": "worker", "peer": "worker"}

Handshake = InitiatorHandshake | AcceptorHandshake


# The header of a batch of n frames (its count, then the lengths), for the usual small n.
_HEADERS = {n: struct.Struct(f"<{n + 1}Q") for n in range(1, 17)}
_ONE_FRAME = _HEADERS[1]


def batch_buffers(frames: list[Any]) -> list[Any]:
    """The buffers to write for one batch (its header, then its frames), with runs of small
    ones joined into one buffer; large frames are written as they are (never copied)."""
    if len(frames) == 1:  # the usual small message: its header and its frame in one buffer
        frame = frames[0]
        size = len(frame) if type(frame) is bytes else memoryview(frame).nbytes
        if size < COALESCE_BELOW:
            return [b"".join((_ONE_FRAME.pack(1, size), frame))]
        return [_ONE_FRAME.pack(1, size), frame]
    if not frames:
        raise FramingError("a batch needs at least one frame")
    sizes = []
    for frame in frames:  # (a loop: a list comprehension is a call of its own)
        sizes.append(len(frame) if type(frame) is bytes else memoryview(frame).nbytes)
    header_format = _HEADERS.get(len(sizes)) or struct.Struct(f"<{len(sizes) + 1}Q")
    header = header_format.pack(len(sizes), *sizes)
    if max(sizes) < COALESCE_BELOW:
        return [b"".join([header, *frames])]
    out: list[Any] = []
    pending: list[Any] = [header]
    for buf, size in zip(frames, sizes):
        if size >= COALESCE_BELOW:
            if pending:  # (none between two large frames)
                out.append(b"".join(pending) if len(pending) > 1 else pending[0])
                pending = []
            out.append(buf)
        else:
            pending.append(buf)
    if pending:
        out.append(b"".join(pending) if len(pending) > 1 else pending[0])
    return out


class Connection:
    """The protocol state of one connection; see the module's docstring.

    ``who`` is the acceptor's own role (``"center"`` or ``"worker"``): with it, messages the
    catalogue does not let the peer send to us are ``invalid-message``. ``limits`` apply once
    the handshake completes (before it: the unauthenticated limits).
    """

    def __init__(self, handshake: Handshake, *, who: str | None = None,
                 limits: Limits = DEFAULT_LIMITS):
        self.handshake: Handshake | None = handshake
        self.initiator = isinstance(handshake, InitiatorHandshake)
        self.limits = limits
        self.decoder = FrameDecoder(UNAUTHENTICATED_LIMITS)
        self.state = "handshaking"  # -> "established" -> "closed" (an error was sent or received)
        self.version: int | None = None
        self.features: frozenset[str] = frozenset()
        self._columnar = False  # the peer agreed column blocks (both ways)
        self._frame_columns = False  # and frame columns in them
        self.peer_environment: Environment | None = None
        self.peer_role: str | None = None  # the role the initiator said in its hello
        self.peer_name: str | None = None
        self.peer_error: Error | None = None  # the error the peer ended the connection with
        # The catalogue's sender names: ours, and whom we may hear from (None: not checked).
        self.sender: str | None
        self.peers: tuple[str, ...] | None
        if isinstance(handshake, InitiatorHandshake):
            # An initiator checks what it sends; what it hears it cannot check as strictly: it
            # cannot tell a center from a worker (or any other server) by the handshake.
            self.sender = SENDER_OF_ROLE.get(handshake.role)
            self.peers = None
        else:
            self.sender = who if who in ("center", "worker") else None
            self.peers = None  # known from the hello
        # Message types found allowed, each way (not the handshake's, not an error, in the
        # catalogue's direction): checked once per type, not once per message.
        self._kinds_received: set[type] = set()
        self._kinds_sent: set[type] = set()
        # Of those, the types with nothing to check per message: the features any message of
        # the type may need are all agreed (with an older peer, some types are checked each
        # time: what a message actually uses).
        self._may_receive: set[type] = set()
        self._may_send: set[type] = set()
        self._ready: collections.deque[list[Any]] = collections.deque()
        self._outgoing: list[Any] = []
        self._queued: list[Message] = []
        if isinstance(handshake, InitiatorHandshake):
            self._send_own(handshake.start())

    @property
    def established(self) -> bool:
        return self.state == "established"

    # -- receiving -------------------------------------------------------------------------
    def get_buffer(self, sizehint: int = -1) -> memoryview:
        return self.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were written into the last ``get_buffer``; ``next_batch`` takes them."""
        self._ready.extend(self.decoder.buffer_updated(nbytes, 1))

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Feed bytes; returns the messages of every batch they complete (the h11 way)."""
        view = memoryview(data).cast("B")
        messages: list[Message] = []
        while view.nbytes:
            target = self.get_buffer()
            n = min(target.nbytes, view.nbytes)
            target[:n] = view[:n]
            view = view[n:]
            self.buffer_updated(n)
            while (batch := self.next_batch()) is not None:
                messages.extend(batch)
        return messages

    def next_batch(self) -> list[Message] | None:
        """The messages of the next complete batch ([] for one the handshake consumed), or None
        when no batch is complete or the connection is closed."""
        if self.state == "closed":
            return None
        if self._ready:
            frames = self._ready.popleft()
        else:
            if not self.decoder.unread:  # (the usual end of a read: no second look)
                return None
            parsed = self.decoder.parse_buffered(1)
            if not parsed:
                return None
            frames = parsed[0]
        return self._received(decode_batch(frames, self._columnar, self._frame_columns))

    def _received(self, messages: list[Message]) -> list[Message]:
        handshake = self.handshake
        if handshake is not None:
            for i, msg in enumerate(messages):
                self._send_own(handshake.receive(msg))  # a ProtocolError ends the connection
                if handshake.done:
                    self._established(handshake)
                    if i + 1 < len(messages):
                        # The peer could not know our limits had risen yet: it broke the rule
                        # that the handshake's last message travels alone.
                        raise HandshakeError(f"{len(messages) - i - 1} message(s) behind "
                                             f"{msg.op!r} in its batch: the handshake's last "
                                             f"message travels in a batch of its own")
                    break
            return []
        known = self._may_receive
        for i, msg in enumerate(messages):
            if type(msg) not in known:
                if isinstance(msg, Error):  # the last thing a peer sends
                    self.peer_error = msg
                    self.state = "closed"
                    return messages[:i]
                self._check_incoming(msg)
        return messages

    def _established(self, handshake: Handshake) -> None:
        self.handshake = None
        self.state = "established"
        self.version = handshake.version
        self.features = handshake.features
        self._columnar = COLUMNS in self.features
        self._frame_columns = self._columnar and FRAME_COLUMNS in self.features
        self.peer_environment = handshake.peer_environment
        if isinstance(handshake, AcceptorHandshake):
            self.peer_role, self.peer_name = handshake.role, handshake.name
            sender = SENDER_OF_ROLE.get(handshake.role or "")
            self.peers = (sender,) if sender and self.sender else None
        self.decoder.limits = self.limits

    def _check_incoming(self, msg: Message) -> None:
        """Whether the peer may send a message of this type here, checked once per type (the
        catalogue is fixed, and so are both roles once the handshake is done); then, unless
        all the features the type may need are agreed, whether this message needs one that
        is not."""
        kind = type(msg)
        if kind not in self._kinds_received:
            if kind in HANDSHAKE_MESSAGES:
                raise HandshakeError(f"{msg.op!r} after the handshake completed")
            if self.peers is not None and self.sender is not None:
                allowed = [f"{peer}->{self.sender}" for peer in self.peers]
                if not any(d in allowed or d == "any->any" for d in msg.direction):
                    raise InvalidMessage(f"op {msg.op!r} is not sent by "
                                         f"{'/'.join(self.peers)}s to {self.sender}s")
            self._kinds_received.add(kind)
        if not msg.feature_checked or kind.features_possible() <= self.features:
            self._may_receive.add(kind)
            return
        # What belongs to a feature we did not agree is what an older peer would reject as
        # unknown: rejecting it here too keeps peers honest about what they announce.
        missing = msg.features_used() - self.features
        if missing:
            raise InvalidMessage(f"{msg.op!r} needs the protocol feature(s) "
                                 f"{sorted(missing)}, not agreed on this connection")

    # -- sending ---------------------------------------------------------------------------
    def send(self, *messages: Message) -> None:
        """Queue messages for the next ``data_to_send``; raises ``LocalProtocolError`` (and
        queues none of them) for one the protocol does not allow here."""
        if self.state != "established":
            raise LocalProtocolError(
                "cannot send before the handshake completed" if self.state == "handshaking"
                else "cannot send on a connection that ended with an error")
        known = self._may_send
        for msg in messages:
            if type(msg) not in known:
                self._check_outgoing(msg)
        self._queued.extend(messages)

    def _check_outgoing(self, msg: Message) -> None:
        kind = type(msg)
        if kind not in self._kinds_sent:  # checked once per type
            if kind in HANDSHAKE_MESSAGES:
                raise LocalProtocolError(f"{msg.op!r} is the handshake's own; it is sent for "
                                         f"you")
            if kind is Error:
                raise LocalProtocolError("an error ends the connection: use send_error")
            if self.sender is not None and not any(
                    d.startswith((f"{self.sender}->", "any->")) for d in msg.direction):
                raise LocalProtocolError(f"{self.sender}s do not send {msg.op!r} (it goes "
                                         f"{', '.join(msg.direction)})", "invalid-message")
            self._kinds_sent.add(kind)
        if not msg.feature_checked or kind.features_possible() <= self.features:
            self._may_send.add(kind)
        else:
            missing = msg.features_used() - self.features
            if missing:
                raise LocalProtocolError(
                    f"{msg.op!r} needs the protocol feature(s) {sorted(missing)}, which the "
                    f"peer did not announce (check the connection's features first)",
                    "invalid-message")

    def send_error(self, error: ProtocolError) -> None:
        """Queue the ``error`` message that ends the connection, in place of anything queued
        and not yet taken; nothing can be sent after it."""
        if self.state == "closed":
            return  # the connection already ended (with our error or the peer's)
        self._queued.clear()
        self._send_own([Error(code=error.code, message=error.message)])
        self.state = "closed"

    def _send_own(self, messages: list[Message]) -> None:
        """The connection's own messages (handshake steps, the final error): each step in a
        batch of its own, ahead of anything queued, so its size fits the peer's
        unauthenticated limits."""
        if messages:
            self._outgoing.extend(batch_buffers(encode_batch(messages)))

    def data_to_send(self) -> list[Any]:
        """The buffers to write, in order; everything queued since the last call."""
        out, self._outgoing = self._outgoing, []
        if self._queued:
            messages, self._queued = self._queued, []
            for frames in encode_batches(messages, MAX_FRAMES_PER_BATCH, self._columnar,
                                         self._frame_columns):
                out.extend(batch_buffers(frames))
        return out

    @property
    def wants_to_send(self) -> bool:
        return bool(self._outgoing or self._queued)

    def release(self) -> None:
        """Drop the buffers of a connection that is over (a small decoder takes their place,
        for bytes that still arrive and are dropped)."""
        self.handshake = None
        self._ready.clear()
        self._queued = []
        self._outgoing = []
        self.decoder = FrameDecoder(UNAUTHENTICATED_LIMITS)

