"""dist-protocol: the wire protocol of dist -- framing, messages, handshake, payloads, comm."""
from .addresses import format_address, parse_address
from .connection import Connection
from .errors import (AuthenticationError, CommClosedError, FramingError, HandshakeError,
                     InvalidMessage, LimitExceeded, LocalProtocolError, ProtocolError,
                     RemoteProtocolError, UnknownOp, VersionMismatch)
from .framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, FrameDecoder, Limits, encode_frames
from .handshake import (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, AcceptorHandshake,
                        InitiatorHandshake)
from .serialize import KeyRef, Payload, SerializationError, deserialize, serialize

__version__ = "0.1.0"

__all__ = [
    "AcceptorHandshake", "AuthenticationError", "CommClosedError", "Connection",
    "DEFAULT_LIMITS", "FrameDecoder", "FramingError", "HandshakeError", "InitiatorHandshake",
    "InvalidMessage", "KeyRef", "LimitExceeded", "Limits", "LocalProtocolError",
    "MIN_PROTOCOL_VERSION", "PROTOCOL_VERSION", "Payload", "ProtocolError",
    "RemoteProtocolError", "SerializationError", "UNAUTHENTICATED_LIMITS", "UnknownOp",
    "VersionMismatch", "deserialize", "encode_frames", "format_address", "parse_address",
    "serialize",
]
