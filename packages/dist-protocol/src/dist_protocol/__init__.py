"""dist-protocol: the wire protocol of dist -- framing, messages, handshake, payloads, comm.

The names below are imported when first used, so that a program importing one light module
(``dist_protocol.addresses``, ``dist_protocol.commandline``) does not pay for the message
catalogue and the comm layer before it needs them.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .addresses import format_address, parse_address
    from .connection import Connection
    from .errors import (AuthenticationError, CommClosedError, FramingError, HandshakeError,
                         InvalidMessage, LimitExceeded, LocalProtocolError, ProtocolError,
                         RemoteProtocolError, UnknownOp, VersionMismatch)
    from .framing import (DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, FrameDecoder, Limits,
                          encode_frames)
    from .handshake import (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, AcceptorHandshake,
                            InitiatorHandshake)
    from .serialize import KeyRef, Payload, SerializationError, deserialize, serialize

__version__ = "0.1.0"

_HOMES = {
    "addresses": ("format_address", "parse_address"),
    "connection": ("Connection",),
    "errors": ("AuthenticationError", "CommClosedError", "FramingError", "HandshakeError",
               "InvalidMessage", "LimitExceeded", "LocalProtocolError", "ProtocolError",
               "RemoteProtocolError", "UnknownOp", "VersionMismatch"),
    "framing": ("DEFAULT_LIMITS", "UNAUTHENTICATED_LIMITS", "FrameDecoder", "Limits",
                "encode_frames"),
    "handshake": ("MIN_PROTOCOL_VERSION", "PROTOCOL_VERSION", "AcceptorHandshake",
                  "InitiatorHandshake"),
    "serialize": ("KeyRef", "Payload", "SerializationError", "deserialize", "serialize"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AcceptorHandshake", "AuthenticationError", "CommClosedError", "Connection",
    "DEFAULT_LIMITS", "FrameDecoder", "FramingError", "HandshakeError", "InitiatorHandshake",
    "InvalidMessage", "KeyRef", "LimitExceeded", "Limits", "LocalProtocolError",
    "MIN_PROTOCOL_VERSION", "PROTOCOL_VERSION", "Payload", "ProtocolError",
    "RemoteProtocolError", "SerializationError", "UNAUTHENTICATED_LIMITS", "UnknownOp",
    "VersionMismatch", "deserialize", "encode_frames", "format_address", "parse_address",
    "serialize",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'dist_protocol' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])
