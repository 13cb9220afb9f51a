"""Errors of the wire protocol.

Every error carries a spec error code (see spec/PROTOCOL.md, "Error codes"): the code is what
goes on the wire in an ``error`` message before the connection closes.
"""
from __future__ import annotations


class ProtocolError(Exception):
    """A violation of the wire protocol. ``code`` is the spec error code."""

    code = "protocol-error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (bad bytes, bad message)."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol does not allow."""


class FramingError(RemoteProtocolError):
    code = "malformed-frame"


class LimitExceeded(RemoteProtocolError):
    code = "limit-exceeded"


class NoRoomForFrame(LimitExceeded):
    """This process could not get the memory for a frame coming in (out of memory, or of
    address space): the peer broke no rule, but the connection ends as for a frame past the
    limits, and the peer is told the same. Those waiting on the connection can tell it from
    a peer's fault."""


class InvalidMessage(RemoteProtocolError):
    code = "invalid-message"


class UnknownOp(InvalidMessage):
    code = "unknown-op"


class InvalidPayload(InvalidMessage):
    """A payload breaks its serializer's rule, or may not be deserialized here."""

    code = "invalid-payload"


class MissingDependency(LookupError):
    """A task's arguments reference a key that is not among its ``deps`` (the worker only has
    the values of its deps). Its name is the spec's ``exception_type`` for it."""


class HandshakeError(ProtocolError):
    code = "handshake-failed"


class VersionMismatch(HandshakeError):
    code = "version-mismatch"


class AuthenticationError(HandshakeError):
    """The peer could not prove it knows the shared token (or we could not)."""

    code = "auth-failed"


class CommClosedError(ConnectionError):
    """The connection is closed; ``reason`` says why when the peer told us."""


# Every code that goes on the wire in an ``error`` message, and what it means. The spec's
# ``schema/messages.json`` and its error table are generated from this; a test checks that each
# error class's code is here.
ERROR_CODES: dict[str, str] = {
    "malformed-frame": "the bytes do not follow the framing (a batch of zero frames)",
    "limit-exceeded": "a batch has more frames, a larger frame or more bytes than the "
                      "receiver's limits admit (before the handshake: the unauthenticated limits)",
    "invalid-message": "frame 0 is not a msgpack array of maps, or a message lacks a required "
                       "field, has a value of the wrong type or references a frame the batch "
                       "lacks, or the receiver does not accept its op from this role",
    "unknown-op": "a message's op is not one the receiver knows, or it has no op",
    "invalid-payload": "a payload breaks its serializer's rule (a msgpack or bytes payload with "
                       "more than one frame, a frame that is not msgpack, a pickle that cannot "
                       "be loaded) or may not be deserialized by the receiver (a pickle made by "
                       "another Python minor version)",
    "handshake-failed": "a message out of turn during the handshake, or an unknown role",
    "version-mismatch": "the two sides' protocol version ranges do not overlap",
    "auth-failed": "a proof is missing or does not match the token, or only one side has a token",
    "handshake-timeout": "the handshake did not complete in time",
    "internal-error": "the receiver failed while handling a message (a bug on its side)",
    "protocol-error": "any other violation of the protocol",
}
