"""Regenerate spec/schema/messages.json and spec/vectors/*.json from dist-protocol.

    python spec/tools/generate.py

dist-protocol's tests load the committed files and compare them with the code, so the spec and
the code cannot drift apart silently: when a message changes, run this and review the diff.
"""
from __future__ import annotations

import json
from pathlib import Path

import msgpack
from dist_protocol.errors import ProtocolError
from dist_protocol.framing import UNAUTHENTICATED_LIMITS, FrameDecoder, frames_to_bytes
from dist_protocol.handshake import (ACCEPTOR_LABEL, INITIATOR_LABEL, MIN_PROTOCOL_VERSION,
                                     PROTOCOL_VERSION, AcceptorHandshake, InitiatorHandshake,
                                     compute_proof)
from dist_protocol.messages import OPS, decode_batch, describe_ops, describe_records

SPEC = Path(__file__).resolve().parents[1]


def tag(value):
    """JSON form of a decoded msgpack value: bytes become {"$bin": hex}."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, list):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {k: tag(v) for k, v in value.items()}
    return value


SAMPLES = {"str": "k", "int": 1, "float": 0.5, "bool": True, "bin": b"\x01\x02", "any": {"a": 1},
           "list<str>": ["a", "b"], "map<int>": {"a": 1}, "map<list<str>>": {"a": ["127.0.0.1:1"]},
           "map<str>": {"a": "b"}, "list<map<any>>": [{"address": "127.0.0.1:1"}],
           "map<any>": {"a": 1}, "map<float>": {"GPU": 1.0}}


def sample_message(op: str, cls) -> dict:
    """A wire map with every required field, payloads pointing at frame 1."""
    wire = {"op": op}
    for field in cls.fields:
        if not field.required:
            continue
        if field.type == "payload" or field.type == "str|payload":
            wire[field.name] = {"serializer": "msgpack", "frames": [1]}
        elif field.type == "map<payload>":
            wire[field.name] = {"a": {"serializer": "msgpack", "frames": [1]}}
        elif field.type == "list<TaskSpec>":
            wire[field.name] = [{"key": "inc-1", "function": "operator:add",
                                 "args": {"serializer": "msgpack", "frames": [1]},
                                 "deps": []}]
        else:
            wire[field.name] = SAMPLES[field.type]
    return wire


def message_vectors() -> list[dict]:
    payload = msgpack.packb([[1, 2], {}])
    vectors = []
    for op, cls in sorted(OPS.items()):
        wire = sample_message(op, cls)
        frame0 = msgpack.packb([wire], use_bin_type=True)
        decode_batch([frame0, payload])  # must be valid
        vectors.append({"op": op, "valid": True, "frames_hex": [frame0.hex(), payload.hex()],
                        "decoded": tag(wire), "section": "Messages"})
    invalid = [
        ([{"op": "no-such-op"}], "unknown-op"),
        ([{"keys": ["a"]}], "unknown-op"),
        ([{"op": "release"}], "invalid-message"),
        ([{"op": "release", "keys": "a"}], "invalid-message"),
        ([{"op": "who-has", "id": "1", "keys": []}], "invalid-message"),
        ({"op": "release", "keys": []}, "invalid-message"),
        ([{"op": "put-data", "id": 1, "data": {"a": {"serializer": "pickle", "frames": [5]}}}],
         "invalid-message"),
        ([{"op": "put-data", "id": 1, "data": {"a": {"serializer": "yaml", "frames": [1]}}}],
         "invalid-message"),
    ]
    for batch, code in invalid:
        frame0 = msgpack.packb(batch, use_bin_type=True)
        try:
            decode_batch([frame0, payload])
        except ProtocolError as exc:
            assert exc.code == code, (batch, exc.code)
        else:
            raise AssertionError(f"{batch} should be rejected")
        vectors.append({"valid": False, "frames_hex": [frame0.hex(), payload.hex()],
                        "error": code, "decoded": tag(batch), "section": "Validation"})
    return vectors


def framing_vectors() -> dict:
    valid = []
    for frames in ([b"\x90"], [b"\x91\x80", b"hello", b""], [b"\x90", bytes(range(256))]):
        valid.append({"frames_hex": [f.hex() for f in frames],
                      "wire_hex": frames_to_bytes(frames).hex()})
    reject = [
        {"wire_hex": (0).to_bytes(8, "little").hex(), "error": "malformed-frame",
         "why": "a batch has at least one frame"},
        {"wire_hex": (2**63).to_bytes(8, "little").hex(), "error": "limit-exceeded",
         "why": "frame count over the limit"},
        {"wire_hex": ((1).to_bytes(8, "little") + (2**40).to_bytes(8, "little")).hex(),
         "error": "limit-exceeded", "why": "frame larger than the limit", "unauthenticated": False},
        {"wire_hex": ((1).to_bytes(8, "little") + (5000).to_bytes(8, "little")).hex(),
         "error": "limit-exceeded", "why": "over 4096 bytes before authentication",
         "unauthenticated": True},
        {"wire_hex": ((2).to_bytes(8, "little") + (1).to_bytes(8, "little") * 2).hex(),
         "error": "limit-exceeded", "why": "more than one frame before authentication",
         "unauthenticated": True},
    ]
    for case in reject:
        limits = UNAUTHENTICATED_LIMITS if case.get("unauthenticated", False) else None
        decoder = FrameDecoder(limits) if limits else FrameDecoder()
        try:
            decoder.feed(bytes.fromhex(case["wire_hex"]))
        except ProtocolError as exc:
            assert exc.code == case["error"], (case, exc.code)
        else:
            raise AssertionError(case)
    return {"byte_order": "little", "valid": valid, "reject": reject}


def auth_vectors() -> list[dict]:
    token = "s3cret-token"
    nc, ns = bytes(range(32)), bytes(range(32, 64))
    return [{"token": token, "client_nonce_hex": nc.hex(), "server_nonce_hex": ns.hex(),
             "acceptor_proof_hex": compute_proof(token, ACCEPTOR_LABEL, nc, ns).hex(),
             "initiator_proof_hex": compute_proof(token, INITIATOR_LABEL, ns, nc).hex(),
             "rule": "acceptor = HMAC-SHA256(token, 'dist acceptor' + Nc + Ns); "
                     "initiator = HMAC-SHA256(token, 'dist initiator' + Ns + Nc)"}]


def handshake_vectors() -> list[dict]:
    nc, ns = bytes(range(32)), bytes(range(32, 64))
    out = []
    for token in (None, "s3cret-token"):
        client = InitiatorHandshake("client", token=token, nonce=nc)
        server = AcceptorHandshake(token=token, nonce=ns)
        transcript = []
        pending = [("C", m) for m in client.start()]
        while pending:
            side, msg = pending.pop(0)
            transcript.append({"from": side, "message": tag(msg.to_wire([]))})
            replies = server.receive(msg) if side == "C" else client.receive(msg)
            pending += [("S" if side == "C" else "C", r) for r in replies]
        out.append({"token": token, "transcript": transcript, "server_nonce_hex": ns.hex(),
                    "end": "authenticated" if token else "connected",
                    "version": client.version})
    out.append({"token": None, "transcript": [{"from": "C", "message": {
        "op": "hello", "min_version": PROTOCOL_VERSION + 1, "max_version": PROTOCOL_VERSION + 2,
        "role": "client"}}], "server_nonce_hex": ns.hex(), "end": "error",
        "error": "version-mismatch"})
    out.append({"token": "s3cret-token", "transcript": [{"from": "C", "message": {
        "op": "hello", "min_version": MIN_PROTOCOL_VERSION, "max_version": PROTOCOL_VERSION,
        "role": "client", "nonce": {"$bin": nc.hex()}}}, {"from": "C", "message": {
            "op": "authenticate", "proof": {"$bin": "00" * 32}}}],
        "server_nonce_hex": ns.hex(), "end": "error", "error": "auth-failed"})
    return out


REPLIES = {"who-has": "who-has-reply", "scatter-plan": "scatter-plan-reply",
           "cluster-info": "cluster-info-reply", "restart": "restart-reply", "get-data": "data",
           "put-data": "data-stored", "hello": "welcome", "authenticate": "authenticated",
           "submit": "key-in-memory / task-erred / key-lost per task, later",
           "cancel": "key-cancelled per key", "register-worker": "worker-registered"}


def catalogue_markdown() -> str:
    lines = ["# Message catalogue", "",
             "Generated from the code by `spec/tools/generate.py`; `schema/messages.json` is the "
             "machine-readable form. Fields not marked required may be left out; receivers "
             "ignore fields they do not know.", ""]
    for op, info in sorted(describe_ops().items()):
        lines += [f"## `{op}`", "",
                  f"Sent {', '.join(d.replace('->', ' → ') for d in info['direction'])}; "
                  f"since protocol version {info['since']}; reply: "
                  f"{REPLIES.get(op, 'none')}.", ""]
        if info["fields"]:
            lines += ["| field | type | required |", "|---|---|---|"]
            lines += [f"| `{name}` | `{f['type']}` | {'yes' if f['required'] else 'no'} |"
                      for name, f in info["fields"].items()]
        else:
            lines += ["No fields."]
        lines.append("")
    lines += ["## Record `TaskSpec`", "", "| field | type | required |", "|---|---|---|"]
    lines += [f"| `{name}` | `{f['type']}` | {'yes' if f['required'] else 'no'} |"
              for name, f in describe_records()["TaskSpec"].items()]
    return "\n".join(lines) + "\n"


def build() -> dict[str, object]:
    schema = {"protocolVersion": PROTOCOL_VERSION, "minProtocolVersion": MIN_PROTOCOL_VERSION,
              "messages": describe_ops(), "records": describe_records()}
    return {"schema/messages.json": schema,
            "vectors/messages.json": message_vectors(),
            "vectors/framing.json": framing_vectors(),
            "vectors/auth.json": auth_vectors(),
            "vectors/handshake.json": handshake_vectors()}


def main() -> None:
    for name, data in build().items():
        path = SPEC / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(SPEC.parent)}")
    (SPEC / "MESSAGES.md").write_text(catalogue_markdown())
    print("wrote spec/MESSAGES.md")


if __name__ == "__main__":
    main()
