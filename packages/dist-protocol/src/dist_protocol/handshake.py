"""The opening exchange of every connection: versions, roles and mutual authentication. No I/O.

Transcript (``C`` opens the connection, ``S`` accepts it)::

    C: hello        {min_version, max_version, role, name, nonce=Nc, features, environment}
    S: welcome      {version, auth=false, features, environment}           -- no token: done
    S: welcome      {version, auth=true, nonce=Ns, proof=HMAC(T, "dist acceptor" Nc Ns),
                     features, environment}
    C: authenticate {proof=HMAC(T, "dist initiator" Ns Nc)}
    S: authenticated {}                                                    -- done

HMAC is HMAC-SHA256 keyed with the UTF-8 token ``T``; nonces are 32 random bytes. Both sides
prove they know the token without sending it, and a fresh nonce from each side makes a recorded
handshake useless to replay. Any failure is an ``error`` message and the connection closes.
Each side lists the optional features it implements; the connection uses those both listed
(``features``), which both sides know once ``welcome`` has crossed.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from collections.abc import Iterable
from typing import ClassVar, NoReturn

from .errors import AuthenticationError, HandshakeError, VersionMismatch
from .features import agree
from .messages import Authenticate, Authenticated, Environment, Error, Hello, Message, Welcome

PROTOCOL_VERSION = 1
MIN_PROTOCOL_VERSION = 1
NONCE_BYTES = 32
INITIATOR_LABEL = b"dist initiator"
ACCEPTOR_LABEL = b"dist acceptor"
ROLES = ("client", "worker", "peer")


def compute_proof(token: str, label: bytes, first_nonce: bytes, second_nonce: bytes) -> bytes:
    return hmac.new(token.encode(), label + first_nonce + second_nonce, hashlib.sha256).digest()


def negotiate(ours: tuple[int, int], theirs: tuple[int, int], we: str, they: str) -> int:
    """The highest version both ranges include, or ``VersionMismatch`` naming both ranges."""
    low, high = max(ours[0], theirs[0]), min(ours[1], theirs[1])
    if low > high:
        raise VersionMismatch(f"{they} speaks protocol versions {theirs[0]}..{theirs[1]}, "
                              f"{we} speaks {ours[0]}..{ours[1]}")
    return high


def _raise_remote_error(msg: Error, text: str) -> NoReturn:
    """The peer's ``error`` raised as the error its code names, with ``text``."""
    kinds = {"version-mismatch": VersionMismatch, "auth-failed": AuthenticationError}
    raise kinds.get(msg.code, HandshakeError)(text, msg.code)


def _dispatch(side: InitiatorHandshake | AcceptorHandshake, state: str,
              msg: Message) -> list[Message]:
    """``msg`` handled by the method of ``side`` that ``side.TRANSITIONS`` names for
    ``(state, msg.op)``; any other message is out of turn."""
    handler = side.TRANSITIONS.get((state, msg.op))
    if handler is None:
        raise HandshakeError(f"unexpected {msg.op!r} during the handshake ({state})")
    replies: list[Message] = getattr(side, handler)(msg)
    return replies


class InitiatorHandshake:
    """The side that connects. ``start()`` then ``receive()`` until ``done``."""

    def __init__(self, role: str, token: str | None = None, name: str | None = None,
                 versions: tuple[int, int] = (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
                 nonce: bytes | None = None, features: Iterable[str] = (),
                 environment: Environment | None = None):
        self.role, self.token, self.name, self.versions = role, token, name, versions
        self.environment = environment
        self.peer_environment: Environment | None = None
        self.nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.version: int | None = None
        self.our_features = sorted(features)
        self.features: frozenset[str] = frozenset()  # agreed: both sides announced them
        self.done = False
        self._state = "start"

    def start(self) -> list[Message]:
        self._state = "sent-hello"
        return [Hello(min_version=self.versions[0], max_version=self.versions[1], role=self.role,
                      name=self.name, nonce=self.nonce, features=self.our_features or None,
                      environment=self.environment)]

    # (state, op received) -> handler; anything else is out of turn. The spec's table says
    # the same, with the conditions each handler checks.
    TRANSITIONS: ClassVar[dict[tuple[str, str], str]] = {
        ("sent-hello", "welcome"): "_on_welcome",
        ("sent-proof", "authenticated"): "_on_authenticated",
    }

    @property
    def state(self) -> str:
        return self._state

    def receive(self, msg: Message) -> list[Message]:
        if isinstance(msg, Error):
            _raise_remote_error(msg, f"peer refused the connection: {msg.message}")
        return _dispatch(self, self._state, msg)

    def _on_authenticated(self, msg: Authenticated) -> list[Message]:
        self._state, self.done = "done", True
        return []

    def _on_welcome(self, msg: Welcome) -> list[Message]:
        if not self.versions[0] <= msg.version <= self.versions[1]:
            raise VersionMismatch(f"server chose protocol version {msg.version}, we speak "
                                  f"{self.versions[0]}..{self.versions[1]}")
        self.version = msg.version
        self.features = agree(self.our_features, msg.features)
        self.peer_environment = msg.environment
        if not msg.auth:
            if self.token:
                raise AuthenticationError("the server does not authenticate, but we were given "
                                          "a token: refusing to talk to an unauthenticated peer")
            self._state, self.done = "done", True
            return []
        if not self.token:
            raise AuthenticationError("the server requires a token: set DIST_TOKEN, pass "
                                      "--token-file, or Executor(address, token=...)")
        if msg.nonce is None or msg.proof is None or len(msg.nonce) != NONCE_BYTES:
            raise AuthenticationError("the server's welcome lacks its nonce or proof")
        expected = compute_proof(self.token, ACCEPTOR_LABEL, self.nonce, bytes(msg.nonce))
        if not hmac.compare_digest(expected, bytes(msg.proof)):
            raise AuthenticationError("the server could not prove it knows the token "
                                      "(the tokens differ)")
        self._state = "sent-proof"
        return [Authenticate(proof=compute_proof(self.token, INITIATOR_LABEL, bytes(msg.nonce),
                                                 self.nonce))]


class AcceptorHandshake:
    """The side that accepts. ``receive()`` each message until ``done``."""

    TRANSITIONS: ClassVar[dict[tuple[str, str], str]] = {
        ("awaiting-hello", "hello"): "_on_hello",
        ("awaiting-proof", "authenticate"): "_on_proof",
    }

    def __init__(self, token: str | None = None,
                 versions: tuple[int, int] = (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
                 nonce: bytes | None = None, who: str = "server", features: Iterable[str] = (),
                 environment: Environment | None = None):
        self.token, self.versions, self.who = token, versions, who
        self.environment = environment
        self.peer_environment: Environment | None = None
        self.nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.version: int | None = None
        self.our_features = sorted(features)
        self.features: frozenset[str] = frozenset()  # agreed: both sides announced them
        self.role: str | None = None
        self.name: str | None = None
        self.done = False
        self._peer_nonce = b""
        self._state = "awaiting-hello"

    @property
    def state(self) -> str:
        return self._state

    def receive(self, msg: Message) -> list[Message]:
        if isinstance(msg, Error):
            # Typically an initiator with another token, which gives up on our proof. Its text
            # is quoted: it ends up in our log.
            _raise_remote_error(msg, f"the peer gave up: {msg.message!r}")
        return _dispatch(self, self._state, msg)

    def _on_proof(self, msg: Authenticate) -> list[Message]:
        expected = compute_proof(self.token or "", INITIATOR_LABEL, self.nonce, self._peer_nonce)
        if not hmac.compare_digest(expected, bytes(msg.proof)):
            raise AuthenticationError("the peer's proof does not match the token")
        self._state, self.done = "done", True
        return [Authenticated()]

    def _on_hello(self, msg: Hello) -> list[Message]:
        if msg.role not in ROLES:
            raise HandshakeError(f"unknown role {msg.role!r}; expected one of {', '.join(ROLES)}")
        self.version = negotiate(self.versions, (msg.min_version, msg.max_version),
                                 self.who, msg.role)
        self.role, self.name = msg.role, msg.name
        self.features = agree(self.our_features, msg.features)
        self.peer_environment = msg.environment
        # Our whole list, not only the agreed part: the initiator agrees the same set, and
        # its log can say what we could have done.
        features = self.our_features or None
        if not self.token:
            self._state, self.done = "done", True
            return [Welcome(version=self.version, auth=False, features=features,
                            environment=self.environment)]
        if msg.nonce is None or len(msg.nonce) != NONCE_BYTES:
            raise AuthenticationError(f"hello needs a {NONCE_BYTES}-byte nonce to authenticate")
        self._peer_nonce = bytes(msg.nonce)
        self._state = "awaiting-proof"
        proof = compute_proof(self.token, ACCEPTOR_LABEL, self._peer_nonce, self.nonce)
        return [Welcome(version=self.version, auth=True, nonce=self.nonce, proof=proof,
                        features=features, environment=self.environment)]
