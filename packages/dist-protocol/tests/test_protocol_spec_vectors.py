"""The committed vectors of spec/vectors/ against the code: decode every hex and compare with
the decoded value, re-encode and compare, replay every handshake, recompute every HMAC.

The vectors are data: when the code changes on purpose, regenerate them with
``python spec/tools/generate.py`` and review the diff. A missing file fails; nothing skips.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import msgpack
import pytest

from dist_protocol.errors import HandshakeError, ProtocolError
from dist_protocol.framing import (DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, FrameDecoder, Limits,
                                   frames_to_bytes)
from dist_protocol.handshake import AcceptorHandshake, InitiatorHandshake, compute_proof
from dist_protocol.messages import OPS, Error, decode_batch, encode_batch, encode_batches
from dist_protocol.serialize import (KeyRef, Payload, SerializationError, deserialize,
                                     msgpack_arguments_loads, msgpack_dumps)
from dist_protocol.connection import Connection
from dist_protocol.testing import (REGENERATE_HINT, connection_pair, decode_in_chunks,
                                   decode_three_ways, frame_to_json, from_json,
                                   load_vectors, rejected_three_ways, to_json)

pytestmark = pytest.mark.timeout(60)

FRAMING = load_vectors("framing")
MESSAGES = load_vectors("messages")
COLUMNS = load_vectors("columns")
HANDSHAKE = load_vectors("handshake")
AUTH = load_vectors("auth")


def cases(vectors: dict) -> list:
    return [pytest.param(case, id=case["name"]) for case in vectors["cases"]]


def test_a_missing_vector_file_raises_instead_of_skipping():
    with pytest.raises(FileNotFoundError, match="generate.py"):
        load_vectors("no-such-vectors")


@pytest.mark.parametrize("vectors", [FRAMING, MESSAGES, COLUMNS, HANDSHAKE, AUTH],
                         ids=["framing", "messages", "columns", "handshake", "auth"])
def test_every_vector_names_its_section_and_names_are_unique(vectors):
    names = [case["name"] for case in vectors["cases"]]
    assert len(names) == len(set(names))
    assert all(case["section"].startswith("PROTOCOL.md#") for case in vectors["cases"])


# -- framing ----------------------------------------------------------------------------------


def limits_of(case: dict) -> Limits:
    named = {"default": DEFAULT_LIMITS, "unauthenticated": UNAUTHENTICATED_LIMITS}
    if isinstance(case["limits"], str):
        assert FRAMING["limits"][case["limits"]] == vars_of(named[case["limits"]]), REGENERATE_HINT
        return named[case["limits"]]
    return Limits(**case["limits"])


def vars_of(limits: Limits) -> dict:
    return {name: getattr(limits, name) for name in Limits.__slots__}


@pytest.mark.parametrize("case", cases(FRAMING))
def test_framing_vector(case):
    data, limits = bytes.fromhex(case["hex"]), limits_of(case)
    if not case["valid"]:
        assert rejected_three_ways(data, limits).code == case["error"], REGENERATE_HINT
        return
    expected = [[bytes.fromhex(f) for f in batch] for batch in case["batches"]]
    if case["complete"]:
        assert decode_three_ways(data, limits) == expected, REGENERATE_HINT
        assert b"".join(frames_to_bytes(b) for b in expected) == data  # one encoding only
    else:
        for chunk in (len(data), 1):
            batches, decoder = decode_in_chunks(data, limits, chunk)
            assert [[bytes(f) for f in b] for b in batches] == expected and not decoder.idle


# -- messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(MESSAGES))
def test_message_vector(case):
    frames = [bytes.fromhex(f) for f in case["frames"]]
    if "decoded" in case:
        decoded = msgpack.unpackb(frames[0], raw=False, strict_map_key=False)
        # compared as JSON, where NaN is the string "nan" and so equals itself
        assert to_json(decoded) == to_json(from_json(case["decoded"])) == case["decoded"]
    if not case["valid"]:
        with pytest.raises(ProtocolError) as caught:
            decode_batch(frames)
        assert caught.value.code == case["error"], REGENERATE_HINT
        return
    messages = decode_batch(frames)
    again = encode_batch(messages)
    expected = from_json(case.get("reencoded", case["decoded"]))
    assert msgpack.unpackb(again[0], raw=False) == expected, REGENERATE_HINT
    plain = [bytes.fromhex(f) for f in case["reencoded_frames"]] if "reencoded_frames" in case \
        else frames[1:]  # compressed frames are handed on decompressed
    assert [bytes(f) for f in again[1:]] == plain
    assert (bytes(again[0]) == frames[0]) == case["canonical"], REGENERATE_HINT
    # What the re-encoding says is what a receiver of it decodes.
    assert decode_batch(again) == messages


def test_every_op_has_valid_vectors():
    valid_ops = {item["op"] for case in MESSAGES["cases"] if case["valid"]
                 for item in from_json(case["decoded"])}
    missing = set(OPS) - valid_ops
    assert not missing, f"no message vectors for {sorted(missing)}; {REGENERATE_HINT}"


def test_the_vectors_include_inputs_that_must_be_rejected():
    codes = {case["error"] for case in MESSAGES["cases"] if not case["valid"]}
    assert {"invalid-message", "unknown-op"} <= codes
    assert {case["error"] for case in FRAMING["cases"] if not case["valid"]} == {
        "malformed-frame", "limit-exceeded"}


# -- column blocks ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(COLUMNS))
def test_column_block_vector(case):
    frames = [bytes.fromhex(f) for f in case["frames"]]
    frame_columns = case.get("frame_columns", False)
    assert to_json(msgpack.unpackb(frames[0], raw=False)) == case["decoded"]
    if not case["valid"]:
        with pytest.raises(ProtocolError) as caught:
            decode_batch(frames, columnar=True, frame_columns=frame_columns)
        assert caught.value.code == case["error"], REGENERATE_HINT
        return
    messages = decode_batch(frames, columnar=True, frame_columns=frame_columns)
    # what the block stands for: these messages, sent as maps
    as_maps = encode_batch(messages)
    assert msgpack.unpackb(as_maps[0], raw=False) == from_json(case["messages"]), \
        REGENERATE_HINT
    assert [bytes(f).hex() for f in as_maps[1:]] == case["messages_frames"]
    assert decode_batch(as_maps) == messages
    (again,) = encode_batches(messages, DEFAULT_LIMITS.max_frames, columnar=True,
                              frame_columns=frame_columns)
    expected = from_json(case.get("reencoded", case["decoded"]))
    assert msgpack.unpackb(again[0], raw=False) == expected, REGENERATE_HINT
    assert (bytes(again[0]) == frames[0]) == case["canonical"], REGENERATE_HINT
    assert decode_batch(again, columnar=True, frame_columns=frame_columns) == messages


def test_a_receiver_without_frame_columns_rejects_every_frame_column():
    valid = [case for case in COLUMNS["cases"] if case["valid"] and case.get("frame_columns")
             and "frame-column" in case["name"]]
    assert len(valid) >= 3
    for case in valid:  # (each holds a frame column)
        with pytest.raises(ProtocolError) as caught:
            decode_batch([bytes.fromhex(f) for f in case["frames"]], columnar=True)
        assert caught.value.code == "invalid-message"


def test_a_receiver_without_the_feature_rejects_every_block_and_column_list():
    valid = [case for case in COLUMNS["cases"] if case["valid"]]
    assert valid
    for case in valid:  # (each holds a block or a column list)
        with pytest.raises(ProtocolError) as caught:
            decode_batch([bytes.fromhex(f) for f in case["frames"]])
        assert caught.value.code == "invalid-message"


def test_the_column_vectors_include_every_kind_of_rejection():
    assert {case["error"] for case in COLUMNS["cases"] if not case["valid"]} == {
        "invalid-message", "unknown-op"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in MESSAGES["payloads"]
                                  if "task_arguments" not in c])
def test_msgpack_payload_vector(case):
    frame = bytes.fromhex(case["hex"])
    assert msgpack.unpackb(frame, raw=False) == from_json(case["decoded"])
    value = deserialize(Payload(case["serializer"], [frame]))
    assert msgpack_dumps(value) == frame  # key references travel back as extension type 1
    if "$ext" in str(case["decoded"]):
        assert KeyRef in {type(v) for v in flatten(value)}


ARGUMENT_CASES = [c for c in MESSAGES["payloads"] if "task_arguments" in c]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in ARGUMENT_CASES])
def test_task_arguments_vector(case):
    frame = bytes.fromhex(case["hex"])
    assert frame_to_json(frame) == case["decoded"]
    if case["task_arguments"] == "refused":
        with pytest.raises(SerializationError, match="extension type|timestamp"):
            msgpack_arguments_loads(frame)
        return
    times = [v for v in flatten(msgpack_arguments_loads(frame)) if isinstance(v, datetime)]
    assert [t.isoformat() for t in times] == case["timestamps"]
    assert all(t.tzinfo is timezone.utc for t in times)


def test_the_argument_vectors_refuse_both_kinds_of_unknown_extension_type():
    refused = {json.dumps(c["decoded"]) for c in ARGUMENT_CASES
               if c["task_arguments"] == "refused"}
    assert any('"$ext": [5,' in text for text in refused)  # an application type
    assert any('"$ext": [-5,' in text for text in refused)  # a reserved one




def flatten(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from flatten(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from flatten(v)
    else:
        yield value


# -- the handshake --------------------------------------------------------------------------------


def step_message(step: dict):
    """The step's message, checked to be what its hex carries, and its canonical bytes."""
    [frames] = FrameDecoder(UNAUTHENTICATED_LIMITS).feed(bytes.fromhex(step["hex"]))
    [msg] = decode_batch(frames)
    assert msg.to_wire([]) == from_json(step["message"])
    assert frames_to_bytes(encode_batch([msg])).hex() == step["hex"]
    return msg


def comparable(wire_map: dict) -> dict:
    # An error's text is not normative: only its code is.
    return {"op": "error", "code": wire_map["code"]} if wire_map["op"] == "error" else wire_map


def replay(case: dict, side: str):
    """Feed one side the other side's steps; returns (its outputs, the side, the failure)."""
    if side == "S":
        setup = case["acceptor"]
        machine = AcceptorHandshake(token=setup["token"], versions=tuple(setup["versions"]),
                                    nonce=bytes.fromhex(setup["nonce"]),
                                    features=setup["features"])
        produced = []
    else:
        setup = case["initiator"]
        machine = InitiatorHandshake(setup["role"], token=setup["token"], name=setup["name"],
                                     versions=tuple(setup["versions"]),
                                     nonce=bytes.fromhex(setup["nonce"]),
                                     features=setup["features"])
        produced = machine.start()
    failure = None
    for step in case["script"]:
        if step["from"] == side:
            continue
        msg = step_message(step)
        try:
            produced += machine.receive(msg)
        except HandshakeError as exc:
            failure = exc
            if not isinstance(msg, Error):  # we found the fault: our error ends the script
                produced.append(Error(code=exc.code, message=exc.message))
            break
    return [comparable(to_json(m.to_wire([]))) for m in produced], machine, failure


def live_sides() -> list:
    """(case, side) for each side a vector puts under test (the other may be scripted)."""
    return [pytest.param(case, side, id=f"{role}-{case['name']}") for case in HANDSHAKE["cases"]
            for side, role in (("S", "acceptor"), ("C", "initiator")) if case[role] is not None]


@pytest.mark.parametrize("case, side", live_sides())
def test_handshake_vector(case, side):
    produced, machine, failure = replay(case, side)
    expected = [comparable(step["message"]) for step in case["script"] if step["from"] == side]
    assert produced == expected, REGENERATE_HINT
    result = case["result"]
    if result["state"] == "done":
        assert failure is None and machine.done and machine.version == result["version"]
        assert sorted(machine.features) == result["features"]
    else:
        assert failure is not None and failure.code == result["code"]


def test_a_version_mismatch_vector_names_both_ranges():
    [case] = [c for c in HANDSHAKE["cases"] if c["name"] == "version-mismatch"]
    c_range, s_range = case["initiator"]["versions"], case["acceptor"]["versions"]
    for text in (case["result"]["message"], case["script"][-1]["message"]["message"]):
        assert "{}..{}".format(*c_range) in text and "{}..{}".format(*s_range) in text


def test_the_handshake_vectors_cover_the_failures_that_matter():
    names = {case["name"] for case in HANDSHAKE["cases"]}
    assert {"without-a-token", "with-a-token", "initiator-has-another-token", "replayed-proof",
            "version-mismatch", "message-before-hello", "features-both-announce",
            "features-only-the-initiator-announces"} <= names


# -- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(AUTH))
def test_auth_vector(case):
    label = case["label"].encode("ascii")
    first, second = bytes.fromhex(case["first_nonce"]), bytes.fromhex(case["second_nonce"])
    assert bytes.fromhex(case["message"]) == label + first + second
    expected = hmac.new(case["token"].encode("utf-8"), label + first + second,
                        hashlib.sha256).hexdigest()
    assert case["hmac"] == expected
    assert compute_proof(case["token"], label, first, second).hex() == expected


def machine_for(case: dict, side: str):
    if side == "S":
        setup = case["acceptor"]
        return AcceptorHandshake(token=setup["token"], versions=tuple(setup["versions"]),
                                 nonce=bytes.fromhex(setup["nonce"]),
                                 features=setup["features"])
    setup = case["initiator"]
    return InitiatorHandshake(setup["role"], token=setup["token"], name=setup["name"],
                              versions=tuple(setup["versions"]),
                              nonce=bytes.fromhex(setup["nonce"]), features=setup["features"])


def messages_in(data: bytes) -> list:
    return [m for frames in FrameDecoder(UNAUTHENTICATED_LIMITS).feed(data)
            for m in decode_batch(frames)]


@pytest.mark.parametrize("case, side", live_sides())
def test_handshake_vector_through_the_connection_the_comm_runs(case, side):
    """The same scripts fed as bytes to a ``Connection``: the bytes it answers with are the
    vector's (error texts aside), and it ends in the vector's state."""
    connection = Connection(machine_for(case, side))
    produced = b"".join(bytes(b) for b in connection.data_to_send())
    failure = None
    for step in case["script"]:
        if step["from"] == side:
            continue
        try:
            assert connection.receive_data(bytes.fromhex(step["hex"])) == []
        except ProtocolError as exc:
            failure = exc
            if step["message"]["op"] != "error":  # we found the fault: our error ends it
                connection.send_error(exc)
        produced += b"".join(bytes(b) for b in connection.data_to_send())
        if failure is not None:
            break
    expected = [comparable(step["message"]) for step in case["script"] if step["from"] == side]
    assert [comparable(to_json(m.to_wire([]))) for m in messages_in(produced)] == expected
    for step in case["script"]:  # byte for byte, where the text is normative
        if step["from"] == side and step["message"]["op"] != "error":
            assert step["hex"] in produced.hex()
    result = case["result"]
    if result["state"] == "done":
        assert failure is None and connection.established
        assert connection.version == result["version"]
        assert sorted(connection.features) == result["features"]
    elif failure is None:  # our side was done; the peer's error ends the connection
        assert connection.peer_error is not None
        assert connection.peer_error.code == result["code"] and not connection.established
    else:
        assert failure.code == result["code"]


@pytest.mark.parametrize("case", cases(MESSAGES))
def test_message_vector_through_an_established_connection(case):
    """Every message vector as the bytes of a batch after the handshake: the connection
    delivers the same messages, or fails with the vector's code."""
    _, acceptor = connection_pair()
    frames = [bytes.fromhex(f) for f in case["frames"]]
    data = frames_to_bytes(frames)
    if case["valid"]:
        messages = decode_batch(frames)
        ops = [m.op for m in messages]
        if {"hello", "welcome", "authenticate", "authenticated"} & set(ops):
            with pytest.raises(HandshakeError) as late:  # out of turn once the handshake is over
                acceptor.receive_data(data)
            assert late.value.code == "handshake-failed"
        elif "error" in ops:  # the last message of the connection
            assert acceptor.receive_data(data) == messages[:ops.index("error")]
            assert acceptor.peer_error == messages[ops.index("error")]
        else:
            assert acceptor.receive_data(data) == messages
    else:
        with pytest.raises(ProtocolError) as caught:
            acceptor.receive_data(data)
        assert caught.value.code == case["error"]
