"""The handshake as transcripts: messages in, messages out, no sockets.

``C`` is the initiator (the side that connects), ``S`` the acceptor.
"""
from __future__ import annotations

import hashlib
import hmac

import pytest

from dist_protocol.errors import AuthenticationError, HandshakeError, VersionMismatch
from dist_protocol.handshake import (ACCEPTOR_LABEL, INITIATOR_LABEL, AcceptorHandshake,
                                     InitiatorHandshake, compute_proof, negotiate)
from dist_protocol.messages import (OPS, Authenticate, Authenticated, Error, Hello, Submit,
                                    Welcome)
from dist_protocol.testing import example_message, spec_dir

pytestmark = pytest.mark.timeout(30)

NC = bytes(range(32))            # the initiator's nonce
NS = bytes(range(100, 132))      # the acceptor's nonce
NS2 = bytes(range(200, 232))     # another acceptor's nonce


def converse(initiator: InitiatorHandshake, acceptor: AcceptorHandshake) -> list[tuple]:
    """Run both sides against each other; the transcript as ``(side, message)`` pairs."""
    transcript = []
    pending = [("C", m) for m in initiator.start()]
    while pending:
        side, msg = pending.pop(0)
        transcript.append((side, msg))
        receiver = acceptor if side == "C" else initiator
        pending += [("S" if side == "C" else "C", r) for r in receiver.receive(msg)]
    return transcript


def hmac_sha256(token: str, data: bytes) -> bytes:
    return hmac.new(token.encode("utf-8"), data, hashlib.sha256).digest()


def test_without_a_token_hello_and_welcome_are_all():
    c = InitiatorHandshake("client", name="alice", nonce=NC)
    s = AcceptorHandshake(nonce=NS)
    assert converse(c, s) == [
        ("C", Hello(min_version=1, max_version=1, role="client", name="alice", nonce=NC)),
        ("S", Welcome(version=1, auth=False)),
    ]
    assert c.done and s.done and c.version == s.version == 1
    assert (s.role, s.name) == ("client", "alice")


def test_with_a_token_both_sides_prove_they_know_it():
    c = InitiatorHandshake("worker", token="tok", nonce=NC)
    s = AcceptorHandshake(token="tok", nonce=NS)
    assert converse(c, s) == [
        ("C", Hello(min_version=1, max_version=1, role="worker", nonce=NC)),
        ("S", Welcome(version=1, auth=True, nonce=NS,
                      proof=hmac_sha256("tok", b"dist acceptor" + NC + NS))),
        ("C", Authenticate(proof=hmac_sha256("tok", b"dist initiator" + NS + NC))),
        ("S", Authenticated()),
    ]
    assert c.done and s.done


def test_the_proof_rule_is_hmac_sha256_of_label_and_nonces():
    assert ACCEPTOR_LABEL == b"dist acceptor" and INITIATOR_LABEL == b"dist initiator"
    assert compute_proof("tøken", INITIATOR_LABEL, NS, NC) == hmac_sha256(
        "tøken", INITIATOR_LABEL + NS + NC)


def test_the_initiator_refuses_an_acceptor_with_another_token():
    c = InitiatorHandshake("client", token="mine", nonce=NC)
    s = AcceptorHandshake(token="theirs", nonce=NS)
    with pytest.raises(AuthenticationError) as caught:
        converse(c, s)
    assert caught.value.code == "auth-failed" and "tokens differ" in caught.value.message
    assert not c.done and not s.done


def test_the_acceptor_refuses_a_wrong_proof():
    s = AcceptorHandshake(token="tok", nonce=NS)
    s.receive(Hello(min_version=1, max_version=1, role="client", nonce=NC))
    with pytest.raises(AuthenticationError) as caught:
        s.receive(Authenticate(proof=hmac_sha256("guess", b"dist initiator" + NS + NC)))
    assert caught.value.code == "auth-failed" and not s.done


def test_a_recorded_proof_fails_against_a_fresh_acceptor_nonce():
    c = InitiatorHandshake("client", token="tok", nonce=NC)
    recorded = converse(c, AcceptorHandshake(token="tok", nonce=NS))
    hello, authenticate = recorded[0][1], recorded[2][1]
    replay_target = AcceptorHandshake(token="tok", nonce=NS2)
    replay_target.receive(hello)
    with pytest.raises(AuthenticationError) as caught:
        replay_target.receive(authenticate)
    assert caught.value.code == "auth-failed"


def test_an_acceptor_proof_is_bound_to_the_initiator_nonce():
    s_welcome = AcceptorHandshake(token="tok", nonce=NS).receive(
        Hello(min_version=1, max_version=1, role="client", nonce=NC))[0]
    other = InitiatorHandshake("client", token="tok", nonce=NS2)
    other.start()
    with pytest.raises(AuthenticationError):
        other.receive(s_welcome)


def test_a_token_holder_refuses_an_acceptor_without_authentication():
    c = InitiatorHandshake("client", token="tok", nonce=NC)
    with pytest.raises(AuthenticationError) as caught:
        converse(c, AcceptorHandshake(nonce=NS))
    assert "does not authenticate" in caught.value.message


def test_an_initiator_without_a_token_is_told_how_to_give_one():
    c = InitiatorHandshake("client", nonce=NC)
    with pytest.raises(AuthenticationError) as caught:
        converse(c, AcceptorHandshake(token="tok", nonce=NS))
    assert "DIST_TOKEN" in caught.value.message


@pytest.mark.parametrize("nonce", [None, b"short", bytes(33)])
def test_authentication_needs_a_32_byte_initiator_nonce(nonce):
    with pytest.raises(AuthenticationError):
        AcceptorHandshake(token="tok", nonce=NS).receive(
            Hello(min_version=1, max_version=1, role="client", nonce=nonce))


@pytest.mark.parametrize("welcome", [
    Welcome(version=1, auth=True, nonce=NS),
    Welcome(version=1, auth=True, proof=bytes(32)),
    Welcome(version=1, auth=True, nonce=b"short", proof=bytes(32)),
])
def test_an_authenticating_welcome_needs_a_nonce_and_a_proof(welcome):
    c = InitiatorHandshake("client", token="tok", nonce=NC)
    c.start()
    with pytest.raises(AuthenticationError):
        c.receive(welcome)


# -- versions -------------------------------------------------------------------------------------


def test_a_version_mismatch_names_both_ranges():
    c = InitiatorHandshake("client", versions=(2, 3), nonce=NC)
    s = AcceptorHandshake(versions=(1, 1), nonce=NS, who="center")
    with pytest.raises(VersionMismatch) as caught:
        converse(c, s)
    assert caught.value.code == "version-mismatch"
    assert "2..3" in caught.value.message and "1..1" in caught.value.message
    assert "client" in caught.value.message and "center" in caught.value.message


@pytest.mark.parametrize("ours, theirs, agreed", [
    ((1, 1), (1, 1), 1), ((1, 3), (2, 5), 3), ((2, 5), (1, 3), 3), ((1, 9), (4, 4), 4)])
def test_negotiation_picks_the_highest_common_version(ours, theirs, agreed):
    assert negotiate(ours, theirs, "we", "they") == agreed
    c = InitiatorHandshake("client", versions=theirs, nonce=NC)
    s = AcceptorHandshake(versions=ours, nonce=NS)
    converse(c, s)
    assert c.version == s.version == agreed


def test_the_initiator_checks_the_version_it_is_given():
    c = InitiatorHandshake("client", versions=(1, 2), nonce=NC)
    c.start()
    with pytest.raises(VersionMismatch) as caught:
        c.receive(Welcome(version=7, auth=False))
    assert "7" in caught.value.message and "1..2" in caught.value.message


# -- unexpected messages: every state x every op --------------------------------------------------


def acceptor_in(state: str) -> AcceptorHandshake:
    s = AcceptorHandshake(token="tok" if state == "awaiting-proof" else None, nonce=NS)
    if state == "awaiting-proof":
        s.receive(Hello(min_version=1, max_version=1, role="client", nonce=NC))
    return s


def initiator_in(state: str) -> InitiatorHandshake:
    c = InitiatorHandshake("client", token="tok", nonce=NC)
    c.start()
    if state == "sent-proof":
        c.receive(Welcome(version=1, auth=True, nonce=NS,
                          proof=compute_proof("tok", ACCEPTOR_LABEL, NC, NS)))
    return c


# The machines' own tables, as the spec's state table lists them.
EXPECTED_BY_ACCEPTOR = dict(AcceptorHandshake.TRANSITIONS)
EXPECTED_BY_INITIATOR = dict(InitiatorHandshake.TRANSITIONS)


def test_the_tables_are_the_specs():
    assert EXPECTED_BY_ACCEPTOR.keys() == {("awaiting-hello", "hello"),
                                           ("awaiting-proof", "authenticate")}
    assert EXPECTED_BY_INITIATOR.keys() == {("sent-hello", "welcome"),
                                            ("sent-proof", "authenticated")}
    spec = (spec_dir() / "PROTOCOL.md").read_text()
    for side, table in (("acceptor", EXPECTED_BY_ACCEPTOR), ("initiator", EXPECTED_BY_INITIATOR)):
        for state, op in table:
            assert f"| {side} | {state} | `{op}" in spec, (side, state, op)


def unexpected(expected: dict[tuple[str, str], str]) -> list[tuple[str, str]]:
    states = sorted({state for state, _ in expected})
    return [(state, op) for state in states for op in sorted(OPS) if (state, op) not in expected]


def refusal_code(op: str) -> str:
    # A peer's error message keeps its own code (the example's is "code-1").
    return "code-1" if op == "error" else "handshake-failed"


@pytest.mark.parametrize("state, op", unexpected(EXPECTED_BY_ACCEPTOR))
def test_the_acceptor_refuses_every_other_message(state, op):
    with pytest.raises(HandshakeError) as caught:
        acceptor_in(state).receive(example_message(OPS[op], full=True))
    assert caught.value.code == refusal_code(op)


@pytest.mark.parametrize("state, op", unexpected(EXPECTED_BY_INITIATOR))
def test_the_initiator_refuses_every_other_message(state, op):
    with pytest.raises(HandshakeError) as caught:
        initiator_in(state).receive(example_message(OPS[op], full=True))
    assert caught.value.code == refusal_code(op)


def test_an_error_from_the_peer_keeps_its_code():
    c = initiator_in("sent-hello")
    with pytest.raises(VersionMismatch) as caught:
        c.receive(Error(code="version-mismatch", message="center speaks 2..2"))
    assert "center speaks 2..2" in caught.value.message


def test_the_acceptor_refuses_a_second_hello_and_anything_after_it_is_done():
    s = AcceptorHandshake(nonce=NS)
    hello = Hello(min_version=1, max_version=1, role="client")
    s.receive(hello)
    for msg in (hello, Submit(tasks=[])):
        with pytest.raises(HandshakeError):
            s.receive(msg)


def test_an_unknown_role_is_refused():
    with pytest.raises(HandshakeError) as caught:
        AcceptorHandshake().receive(Hello(min_version=1, max_version=1, role="admin"))
    assert caught.value.code == "handshake-failed" and "admin" in caught.value.message
