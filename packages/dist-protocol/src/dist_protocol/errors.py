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


class InvalidMessage(RemoteProtocolError):
    code = "invalid-message"


class UnknownOp(InvalidMessage):
    code = "unknown-op"


class HandshakeError(ProtocolError):
    code = "handshake-failed"


class VersionMismatch(HandshakeError):
    code = "version-mismatch"


class AuthenticationError(HandshakeError):
    """The peer could not prove it knows the shared token (or we could not)."""

    code = "auth-failed"


class CommClosedError(ConnectionError):
    """The connection is closed; ``reason`` says why when the peer told us."""
