"""The spec and the code hold each other: every file under spec/ is loaded and checked.

A missing vector file fails (it never skips). When a message changes on purpose, regenerate
with ``python spec/tools/generate.py`` and review the diff.
"""
import json
from pathlib import Path

import msgpack
import pytest
from dist_protocol.errors import ProtocolError
from dist_protocol.framing import UNAUTHENTICATED_LIMITS, FrameDecoder, frames_to_bytes
from dist_protocol.handshake import (ACCEPTOR_LABEL, INITIATOR_LABEL, PROTOCOL_VERSION,
                                     AcceptorHandshake, compute_proof)
from dist_protocol.messages import OPS, decode_batch, describe_ops, describe_records, encode_batch

SPEC = Path(__file__).resolve().parents[3] / "spec"
REGENERATE = "spec/ and the code differ: run `python spec/tools/generate.py` and review the diff"


def load(name):
    path = SPEC / name
    assert path.is_file(), f"missing spec file {path}"
    return json.loads(path.read_text())


def untag(value):
    if isinstance(value, dict) and set(value) == {"$bin"}:
        return bytes.fromhex(value["$bin"])
    if isinstance(value, list):
        return [untag(v) for v in value]
    if isinstance(value, dict):
        return {k: untag(v) for k, v in value.items()}
    return value


def test_schema_ops_are_exactly_the_message_classes():
    schema = load("schema/messages.json")
    assert set(schema["messages"]) == set(OPS), REGENERATE
    assert schema["messages"] == describe_ops(), REGENERATE
    assert schema["records"] == describe_records(), REGENERATE
    assert schema["protocolVersion"] == PROTOCOL_VERSION


def test_message_catalogue_document_matches_the_code():
    import importlib.util
    spec = importlib.util.spec_from_file_location("spec_generate", SPEC / "tools" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert (SPEC / "MESSAGES.md").read_text() == generate.catalogue_markdown(), REGENERATE


def test_schema_is_valid_under_its_meta_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the catalogue")
    jsonschema.validate(load("schema/messages.json"), load("schema/meta.schema.json"))


def test_message_vectors_decode_and_reencode():
    vectors = load("vectors/messages.json")
    assert {v["op"] for v in vectors if v["valid"]} == set(OPS), REGENERATE
    for vector in vectors:
        frames = [bytes.fromhex(h) for h in vector["frames_hex"]]
        assert msgpack.unpackb(frames[0], raw=False) == untag(vector["decoded"]) or \
            msgpack.unpackb(frames[0], raw=False) == [untag(vector["decoded"])]
        if not vector["valid"]:
            with pytest.raises(ProtocolError) as caught:
                decode_batch(frames)
            assert caught.value.code == vector["error"]
            continue
        [message] = decode_batch(frames)
        assert message.op == vector["op"]
        # msgpack allows several encodings: the check is the round trip, not the bytes.
        again = decode_batch(encode_batch([message]))
        assert again == [message]


def test_framing_vectors_three_ways():
    vectors = load("vectors/framing.json")
    assert vectors["byte_order"] == "little"
    for case in vectors["valid"]:
        frames = [bytes.fromhex(h) for h in case["frames_hex"]]
        wire = bytes.fromhex(case["wire_hex"])
        assert frames_to_bytes(frames) == wire
        whole = FrameDecoder().feed(wire)
        bytewise = []
        decoder = FrameDecoder()
        for i in range(len(wire)):
            bytewise += decoder.feed(wire[i:i + 1])
        trailing = FrameDecoder().feed(wire + wire[:5])
        for got in (whole, bytewise, trailing):
            assert [[bytes(f) for f in batch] for batch in got] == [frames]
    for case in vectors["reject"]:
        limits = UNAUTHENTICATED_LIMITS if case.get("unauthenticated") else None
        decoder = FrameDecoder(limits) if limits else FrameDecoder()
        with pytest.raises(ProtocolError) as caught:
            decoder.feed(bytes.fromhex(case["wire_hex"]))
        assert caught.value.code == case["error"], case["why"]


def test_auth_vectors_give_the_exact_hmacs():
    for case in load("vectors/auth.json"):
        nc, ns = bytes.fromhex(case["client_nonce_hex"]), bytes.fromhex(case["server_nonce_hex"])
        assert compute_proof(case["token"], ACCEPTOR_LABEL, nc, ns).hex() == \
            case["acceptor_proof_hex"]
        assert compute_proof(case["token"], INITIATOR_LABEL, ns, nc).hex() == \
            case["initiator_proof_hex"]


def test_handshake_transcripts_replay_against_the_acceptor():
    for case in load("vectors/handshake.json"):
        nonce = bytes.fromhex(case["server_nonce_hex"])
        transcript = case["transcript"]
        server = AcceptorHandshake(token=case["token"], nonce=nonce)
        try:
            expected_replies = []
            for step in transcript:
                wire = untag(step["message"])
                if step["from"] == "S":
                    assert expected_replies.pop(0) == wire
                    continue
                [message] = decode_batch([msgpack.packb([wire], use_bin_type=True)])
                expected_replies += [r.to_wire([]) for r in server.receive(message)]
        except ProtocolError as exc:
            assert case["end"] == "error" and exc.code == case["error"]
        else:
            assert case["end"] != "error" and server.done
