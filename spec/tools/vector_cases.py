"""The cases behind spec/vectors/*.json, computed with dist_protocol (see generate.py).

Inputs are written the way a sender in any language would write them (wire maps, raw
bytes); the expected outputs (decoded values, error codes, replies, HMACs) come from the
reference implementation, so regenerating after a deliberate change records the new
behaviour, and the tests catch an accidental one.
"""
from __future__ import annotations

import datetime
import struct
from typing import Any

import msgpack

from dist_protocol.errors import ProtocolError
from dist_protocol.framing import (DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, FrameDecoder, Limits,
                                   frames_to_bytes)
from dist_protocol.handshake import (ACCEPTOR_LABEL, INITIATOR_LABEL, AcceptorHandshake,
                                     InitiatorHandshake, compute_proof)
from dist_protocol.messages import (OPS, Authenticate, Authenticated, Error, Hello, Submit,
                                    Welcome)
from dist_protocol.messages import decode_batch, encode_batch, encode_batches
from dist_protocol.serialize import (KeyRef, SerializationError, msgpack_arguments_loads,
                                     msgpack_dumps)
from dist_protocol.testing import example_message, frame_to_json, to_json
from key_cases import key_vectors

NC = bytes(range(32))                      # the initiator's nonce in every transcript
NS = bytes(range(0x80, 0xA0))              # the acceptor's nonce
NS_OTHER = bytes(range(0xC0, 0xE0))        # a second acceptor's nonce (replay)
PACK = {"use_bin_type": True}


def limits_json(limits: Limits) -> dict:
    return {"max_frames": limits.max_frames, "max_frame_bytes": limits.max_frame_bytes,
            "max_batch_bytes": limits.max_batch_bytes}


# -- framing ------------------------------------------------------------------------------------


def _header(*lengths: int, nframes: int | None = None) -> bytes:
    return struct.pack(f"<{len(lengths) + 1}Q", len(lengths) if nframes is None else nframes,
                       *lengths)


def framing_vectors() -> dict:
    small = Limits(max_frames=4, max_frame_bytes=16, max_batch_bytes=24)
    cases = [
        ("one-frame", frames_to_bytes([b"\x90"]), "default"),
        ("three-frames", frames_to_bytes([b"\x91\x80", b"payload", b"\x00\xff"]), "default"),
        ("empty-payload-frame", frames_to_bytes([b"\x90", b""]), "default"),
        ("two-batches-back-to-back", frames_to_bytes([b"\x90"]) + frames_to_bytes([b"a", b"b"]),
         "default"),
        ("incomplete-count", _header(1)[:5], "default"),
        ("incomplete-lengths", _header(1, 2)[:20], "default"),
        ("incomplete-frame", _header(1, 5) + b"abc", "default"),
        ("largest-unauthenticated-frame", frames_to_bytes([b"\x90" + b"\x00" * 4095]),
         "unauthenticated"),
        ("at-every-limit", frames_to_bytes([b"a" * 16, b"b" * 8, b"", b""]), small),
        # must be rejected:
        ("zero-frames", _header(nframes=0), "default"),
        ("more-frames-than-the-limit", _header(nframes=2**64 - 1), "default"),
        ("five-frames-over-a-limit-of-four", _header(1, 1, 1, 1, 1), small),
        ("frame-over-the-size-limit", _header(17), small),
        ("batch-over-the-size-limit", _header(16, 9), small),
        ("two-frames-before-the-handshake", frames_to_bytes([b"\x90", b"x"]), "unauthenticated"),
        ("large-frame-before-the-handshake", _header(4097), "unauthenticated"),
    ]
    out = []
    for name, data, limits in cases:
        named = {"default": DEFAULT_LIMITS, "unauthenticated": UNAUTHENTICATED_LIMITS}
        actual = named[limits] if isinstance(limits, str) else limits
        case: dict[str, Any] = {"name": name, "section": "PROTOCOL.md#framing",
                                "limits": limits if isinstance(limits, str)
                                else limits_json(limits), "hex": data.hex()}
        decoder = FrameDecoder(actual)
        try:
            batches = decoder.feed(data)
        except ProtocolError as exc:
            case.update(valid=False, error=exc.code)
        else:
            case.update(valid=True, batches=[[bytes(f).hex() for f in b] for b in batches],
                        complete=decoder.idle)
        out.append(case)
    return {
        "description": "Bytes on the wire and the batches of frames they carry. 'limits' names "
                       "the receiver's limits (see 'limits' below) or gives them. A valid case "
                       "lists its batches; 'complete': false means the decoder is waiting for "
                       "more bytes. An invalid case gives the error code the receiver sends "
                       "before it closes the connection.",
        "limits": {"default": limits_json(DEFAULT_LIMITS),
                   "unauthenticated": limits_json(UNAUTHENTICATED_LIMITS)},
        "cases": out,
    }


# -- messages -----------------------------------------------------------------------------------

def _msgpack(value: Any) -> bytes:
    return msgpack_dumps(value)


SQRT_ARGS = _msgpack([[16.0], {}])
ADD_ARGS = _msgpack([[KeyRef("sqrt-1"), 1], {"scale": 2}])

# (name, section, frame 0 as bytes or as a list of wire maps, payload frames)
# b"abc" * 40 as an lz4 block with its size (120) in front, as the compression feature sends it.
LZ4_ABC = bytes.fromhex("780000003f61626303005d506263616263")
# The same as one zstd frame (level 1) stating its content size, as compression-zstd sends it;
# then without the size, and a bare frame header claiming 4 GiB.
ZSTD_ABC = bytes.fromhex("28b52ffd2078550000186162630100d2d40d01")
ZSTD_ABC_UNSIZED = bytes.fromhex("28b52ffd0000550000186162630100d2d40d01")
ZSTD_CLAIMS_4GIB = bytes.fromhex("28b52ffde00000000001000000")

HAND_WRITTEN: list[tuple[str, str, Any, list[bytes]]] = [
    ("hello", "hello", [{"op": "hello", "min_version": 1, "max_version": 1, "role": "client",
                         "name": "mini", "nonce": NC}], []),
    ("welcome-without-auth", "welcome", [{"op": "welcome", "version": 1, "auth": False}], []),
    ("hello-with-features-and-environment", "hello",
     [{"op": "hello", "min_version": 1, "max_version": 1, "role": "client", "nonce": NC,
       "features": ["scatter-done"],
       "environment": {"implementation": "cpython", "python": "3.11.7",
                       "packages": {"dist-client": "0.1.0", "msgpack": "1.0.8"}}}], []),
    ("submit-by-import-path", "submit",
     [{"op": "submit", "tasks": [{"key": "sqrt-1", "function": "math:sqrt",
                                  "args": {"serializer": "msgpack", "frames": [1]}}]}],
     [SQRT_ARGS]),
    ("submit-with-a-dependency", "submit",
     [{"op": "submit", "tasks": [
         {"key": "sqrt-1", "function": "math:sqrt",
          "args": {"serializer": "msgpack", "frames": [1]}},
         {"key": "add-1", "function": "operator:add", "deps": ["sqrt-1"],
          "args": {"serializer": "msgpack", "frames": [2]}}], "wanted": ["add-1"]}],
     [SQRT_ARGS, ADD_ARGS]),
    ("submit-a-pickled-function", "submit",
     [{"op": "submit", "tasks": [{"key": "f-1", "function": {"serializer": "pickle",
                                                             "frames": [1]}}]}],
     [b"\x80\x05\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94."]),
    ("key-in-memory", "key-in-memory",
     [{"op": "key-in-memory", "key": "sqrt-1", "nbytes": 24, "type": "float",
       "workers": ["10.0.0.5:40211"]}], []),
    ("task-erred", "task-erred",
     [{"op": "task-erred", "key": "sqrt-2", "exception_type": "ValueError",
       "message": "math domain error", "traceback": "Traceback ..."}], []),
    # The restart-workers feature: one worker by name, and how it went.
    ("restart-workers-by-name", "restarting-some-workers",
     [{"op": "restart-workers", "id": 4, "workers": ["worker-1"], "timeout": 40.0}], []),
    ("restart-workers-reply-one-back-one-late", "restarting-some-workers",
     [{"op": "restart-workers-reply", "id": 4,
       "status": {"worker-1": "OK", "10.0.0.7:40211": "timed out"}}], []),
    # The reschedule feature: the task raised Reschedule; the center runs it again.
    ("task-erred-asking-to-be-rescheduled", "tasks-that-ask-to-be-rescheduled",
     [{"op": "task-erred", "key": "load-3a1c", "exception_type": "Reschedule", "message": "",
       "traceback": "Traceback ...", "reschedule": True}], []),
    ("who-has-then-get-data", "who-has",
     [{"op": "who-has", "id": 1, "keys": ["sqrt-1", "gone-1"]}], []),
    ("who-has-reply", "who-has-reply",
     [{"op": "who-has-reply", "id": 1, "who_has": {"sqrt-1": ["10.0.0.5:40211"],
                                                   "gone-1": []}}], []),
    ("get-data-msgpack", "get-data",
     [{"op": "get-data", "id": 2, "keys": ["sqrt-1"], "serializers": ["msgpack"]}], []),
    ("data-reply", "data",
     [{"op": "data", "id": 2, "data": {"sqrt-1": {"serializer": "msgpack", "frames": [1]}},
       "missing": ["gone-1"], "errors": {}}], [_msgpack(4.0)]),
    ("release", "release", [{"op": "release", "keys": ["sqrt-1", "add-1"]}], []),
    ("error", "error", [{"op": "error", "code": "unknown-op", "message": "unknown op 'x'"}], []),
    ("several-messages-share-a-batch", "framing",
     [{"op": "release", "keys": ["a"]}, {"op": "put-data", "id": 3, "data": {
         "x": {"serializer": "bytes", "frames": [1]}}}, {"op": "cancel", "keys": ["b"]}],
     [b"raw bytes"]),
    ("a-pickle-with-an-out-of-band-buffer", "payloads",
     [{"op": "put-data", "id": 4, "data": {"arr": {"serializer": "pickle", "frames": [1, 2]}}}],
     [b"\x80\x05pickle stream", b"\x00" * 16]),
    # The compression feature: a frame sent compressed (an lz4 block, its original size in front); a
    # receiver hands on the payload plain, so re-encoded it has neither the key nor the block.
    ("an-lz4-compressed-frame", "payloads",
     [{"op": "put-data", "id": 5, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["lz4"]}}}],
     [LZ4_ABC]),
    # The compression-zstd feature: a frame sent as one zstd frame that states its size.
    ("a-zstd-compressed-frame", "payloads",
     [{"op": "put-data", "id": 6, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["zstd"]}}}],
     [ZSTD_ABC]),
    ("queue-put-a-msgpack-value", "coordination-primitives",
     [{"op": "coordinate", "id": 7, "kind": "queue", "name": "jobs", "action": "put",
       "value": {"serializer": "msgpack", "frames": [1]}, "limit": 100}],
     [_msgpack({"path": "a.csv", "rows": 3})]),
    ("lock-acquire-waiting-at-most-a-second", "coordination-primitives",
     [{"op": "coordinate", "id": 8, "kind": "lock", "name": "db", "action": "acquire",
       "lease": "c1-0", "timeout": 1.0}], []),
    # The multi-lock feature: two of three locks, waiting at most 5 s.
    ("multi-lock-acquire-two-of-three", "coordination-primitives",
     [{"op": "coordinate", "id": 9, "kind": "multi-lock", "name": "*", "action": "acquire",
       "names": ["db", "cache", "queue"], "limit": 2, "lease": "c1-7", "timeout": 5.0}], []),
    # The pickled-values feature: a pickled value says which Python pickled it.
    ("queue-get-reply-of-a-value-pickled-on-3-11", "pickled-code-and-python-versions",
     [{"op": "coordinate-reply", "id": 7, "status": "ok",
       "value": {"serializer": "pickle", "frames": [1]}, "pickled_with": "cpython-3.11"}],
     [b"\x80\x05K\x03."]),
    ("coordinate-reply-timeout", "coordinate-reply",
     [{"op": "coordinate-reply", "id": 8, "status": "timeout"}], []),
    ("coordinate-reply-a-lease-not-held", "coordinate-reply",
     [{"op": "coordinate-reply", "id": 9, "status": "error",
       "error": "lock 'db': lease 'c2-0' is not held by this client (released twice, "
                "or never acquired)"}], []),
    ("cluster-info-waiting-for-two-workers", "waits",
     [{"op": "cluster-info", "id": 4, "min_workers": 2, "timeout": 30.0}], []),
    ("worker-list", "worker-events",
     [{"op": "worker-list", "workers": [
         {"address": "10.0.0.5:40211", "name": "w1", "nthreads": 4, "memory_limit": 0,
          "resources": {}, "environment": {"implementation": "cpython", "python": "3.11.7",
                                           "packages": {"dist-worker": "0.1.0"}}}]}], []),
    ("worker-added-on-another-python", "worker-events",
     [{"op": "worker-added", "worker": {
         "address": "10.0.0.6:40212", "name": "w2", "nthreads": 2, "memory_limit": 2 ** 30,
         "resources": {"GPU": 1.0}, "environment": {"implementation": "cpython",
                                                    "python": "3.12.1", "packages": {}}}}],
     []),
    ("worker-removed", "worker-events",
     [{"op": "worker-removed", "address": "10.0.0.5:40211"}], []),
    ("worker-status-its-disk-is-full", "worker-events",
     [{"op": "worker-status", "address": "10.0.0.5:40211",
       "cannot_spill": "OSError: [Errno 28] no space left in /scratch/dist-worker-1: "
                       "25821184 bytes free, 50000173 needed"}], []),
    ("worker-status-it-spills-again", "worker-events",
     [{"op": "worker-status", "address": "10.0.0.5:40211"}], []),
    ("restarting-for-memory", "restarting-for-memory",
     [{"op": "restarting-for-memory", "keys": {"make-170mb-0": 178257920},
       "memory": 211812352}], []),
    ("worker-alive", "workers-a-nanny-vouches-for",
     [{"op": "worker-alive", "address": "10.0.0.5:40211"}], []),
    ("worker-terminated", "workers-a-task-terminates",
     [{"op": "worker-terminated", "keys": ["signal_own_process-8c1f0b8a"]}], []),
    ("scatter-plan-waiting-for-a-worker", "waits",
     [{"op": "scatter-plan", "id": 5, "keys": {"x": 28}, "timeout": 30.0}], []),
    ("replicate-answered-when-done", "waits",
     [{"op": "replicate", "keys": ["x"], "n": 3, "id": 6, "timeout": 60.0}], []),
    ("replicate-reply-a-key-gone", "replicate-reply",
     [{"op": "replicate-reply", "id": 6, "status": "gone", "n": 2, "keys": ["x"]}], []),
    ("published-on-a-topic", "published",
     [{"op": "published", "topic": "progress", "value": {"serializer": "msgpack",
                                                         "frames": [1]}}], [_msgpack(0.5)]),
    ("actor-call-with-msgpack-args", "actors",
     [{"op": "actor-call", "id": 1, "key": "Counter-1", "name": "increment",
       "args": {"serializer": "msgpack", "frames": [1]}}], [_msgpack([[5], {}])]),
    ("actor-call-reading-an-attribute", "actors",
     [{"op": "actor-call", "id": 2, "key": "Counter-1", "name": "n"}], []),
    # The second link of a chain, sent to the worker computing its input (dispatch-ahead).
    ("compute-task-sent-ahead-of-its-input", "dispatch-ahead",
     [{"op": "compute-task", "key": "inc-2", "function": "operator:add",
       "args": {"serializer": "msgpack", "frames": [1]},
       "who_has": {"inc-1": []}, "ahead": ["inc-1"]}],
     [_msgpack([[KeyRef("inc-1"), 1], {}])]),
    # The first of a graph's two parts (graph-parts): kept at the center, though nothing in it
    # is wanted, until the part without `more` links its tasks.
    ("submit-the-first-part-of-a-graph", "graphs-in-parts",
     [{"op": "submit", "tasks": [{"key": "sqrt-1", "function": "math:sqrt",
                                  "args": {"serializer": "msgpack", "frames": [1]}}],
       "wanted": [], "graph": 1, "more": True}],
     [_msgpack([[16.0], {}])]),
    ("an-empty-batch", "framing", [], []),
    # Other encodings a sender may choose: any valid msgpack is accepted.
    ("wide-integer-and-str8-encodings", "message-encoding",
     b"\x91\x83\xa2op\xd9\x07who-has\xa2id\xcf" + struct.pack(">Q", 1) + b"\xa4keys\x90", []),
    ("keys-in-any-order", "message-encoding",
     [{"keys": ["k"], "id": 9, "op": "who-has"}], []),
    ("nil-means-absent", "message-encoding",
     [{"op": "key-in-memory", "key": "k", "workers": None}], []),
    ("unknown-fields-are-ignored", "compatibility",
     [{"op": "release", "keys": ["a"], "reason": "added in a later version"}], []),
    # must be rejected:
    ("unknown-op", "compatibility", [{"op": "teleport", "keys": []}], []),
    ("no-op", "message-encoding", [{"keys": []}], []),
    ("op-not-a-string", "message-encoding", [{"op": 5, "keys": []}], []),
    ("missing-required-field", "release", [{"op": "release"}], []),
    ("wrong-type", "release", [{"op": "release", "keys": "sqrt-1"}], []),
    ("bool-is-not-int", "who-has", [{"op": "who-has", "id": True, "keys": []}], []),
    ("float-is-not-int", "who-has", [{"op": "who-has", "id": 1.0, "keys": []}], []),
    ("wrong-type-inside-a-record", "submit",
     [{"op": "submit", "tasks": [{"key": 1, "function": "math:sqrt"}]}], []),
    ("payload-frame-0-is-the-message-list", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [0]}}}],
     [b"x"]),
    ("payload-frame-beyond-the-batch", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [2]}}}],
     [b"x"]),
    ("payload-with-no-frames", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": []}}}], []),
    ("unknown-serializer", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "yaml", "frames": [1]}}}],
     [b"x"]),
    ("a-msgpack-payload-of-two-frames", "serializers",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "msgpack", "frames": [1, 2]}}}],
     [_msgpack(1), _msgpack(2)]),
    ("a-bytes-payload-of-two-frames", "serializers",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [1, 2]}}}],
     [b"a", b"b"]),
    ("negative-replicate-count", "replicate", [{"op": "replicate", "keys": ["a"], "n": -5}], []),
    ("negative-restart-timeout", "restart", [{"op": "restart", "id": 1, "timeout": -1.0}], []),
    ("negative-coordinate-timeout", "coordinate",
     [{"op": "coordinate", "id": 1, "kind": "event", "name": "e", "action": "wait",
       "timeout": -1.0}], []),
    ("negative-actor-restarts", "submit",
     [{"op": "submit", "tasks": [{"key": "a", "function": "m:C", "actor": True,
                                  "max_restarts": -1}]}], []),
    ("negative-cluster-info-timeout", "cluster-info",
     [{"op": "cluster-info", "id": 1, "min_workers": 1, "timeout": -1.0}], []),
    ("restarting-for-memory-negative-size", "restarting-for-memory",
     [{"op": "restarting-for-memory", "keys": {"x": -1}, "memory": 211812352}], []),
    ("worker-terminated-keys-not-a-list", "workers-a-task-terminates",
     [{"op": "worker-terminated", "keys": "signal_own_process-8c1f0b8a"}], []),
    ("worker-removed-without-an-address", "worker-events",
     [{"op": "worker-removed"}], []),
    ("worker-list-not-a-list", "worker-events",
     [{"op": "worker-list", "workers": {"address": "10.0.0.5:40211"}}], []),
    ("negative-min-workers", "cluster-info",
     [{"op": "cluster-info", "id": 1, "min_workers": -2}], []),
    ("negative-scatter-size", "scatter-plan",
     [{"op": "scatter-plan", "id": 1, "keys": {"a": -3}}], []),
    ("nan-resources", "submit",
     [{"op": "submit", "tasks": [{"key": "a", "function": "m:f",
                                  "resources": {"GPU": float("nan")}}]}], []),
    ("negative-resources", "register-worker",
     [{"op": "register-worker", "address": "10.0.0.5:40211", "nthreads": 1,
       "resources": {"GPU": -1.0}}], []),
    ("unknown-compression", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["zip"]}}}], [b"x"]),
    ("compression-for-the-wrong-number-of-frames", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["lz4", None]}}}], [LZ4_ABC]),
    ("a-compressed-frame-claiming-too-much", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["lz4"]}}}],
     [struct.pack("<I", 2**30) + b"\x00"]),
    ("a-zstd-frame-that-states-no-size", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["zstd"]}}}],
     [ZSTD_ABC_UNSIZED]),
    ("a-zstd-frame-claiming-too-much", "payloads",
     [{"op": "put-data", "id": 1, "data": {"x": {"serializer": "bytes", "frames": [1],
                                                 "compression": ["zstd"]}}}],
     [ZSTD_CLAIMS_4GIB]),
    ("frame-0-is-a-map", "message-encoding", _msgpack({"op": "release", "keys": []}), []),
    ("a-message-is-not-a-map", "message-encoding", _msgpack(["release"]), []),
    ("frame-0-is-not-msgpack", "message-encoding", b"\xc1", []),
    ("bytes-after-the-list", "message-encoding", _msgpack([]) + b"\x00", []),
    ("non-string-map-key", "message-encoding", b"\x91\x81\x01\x02", []),
]


def message_vectors() -> dict:
    cases = []
    for name, section, frame0, payload in HAND_WRITTEN:
        raw = frame0 if isinstance(frame0, bytes) else msgpack.packb(frame0, **PACK)
        cases.append(_message_case(name, f"PROTOCOL.md#{section}", [raw, *payload]))
    for op, cls in OPS.items():
        for full, label in ((False, "required-fields"), (True, "every-field")):
            frames = [bytes(f) for f in encode_batch([example_message(cls, full=full)])]
            cases.append(_message_case(f"{op}/{label}", f"PROTOCOL.md#{op}", frames))
    return {
        "description": "Batches of messages: 'frames' in hex (frame 0 is the msgpack array of "
                       "message maps, payload frames follow), 'decoded' is frame 0 as JSON with "
                       "binary values tagged {\"$bin\": hex}, extension values "
                       "{\"$ext\": [type, hex]} and floats {\"$float\": number} (or \"nan\", "
                       "\"inf\", \"-inf\"): an untagged number is a msgpack int. A valid "
                       "case may give 'reencoded': what the "
                       "reference encoder emits for the same messages (defaults filled in, "
                       "unknown fields dropped); 'canonical' says whether its bytes equal "
                       "frame 0; 'reencoded_frames' (hex), when the payload frames were "
                       "compressed, are the plain frames a receiver hands on. An invalid case "
                       "gives the error code. A payload case with 'task_arguments' is a "
                       "task's args holding extension types other than a key reference: "
                       "'refused' (the worker errs the task with exception_type "
                       "SerializationError naming the type, and runs nothing) or 'accepted', "
                       "'timestamps' then being the instants its timestamps (type -1) stand "
                       "for, in the order they come, in ISO 8601 and UTC.",
        "payloads": payload_vectors() + argument_vectors(),
        "cases": cases,
    }


def _message_case(name: str, section: str, frames: list[bytes]) -> dict:
    case: dict[str, Any] = {"name": name, "section": section,
                            "frames": [f.hex() for f in frames]}
    try:
        case["decoded"] = to_json(msgpack.unpackb(frames[0], raw=False, strict_map_key=False))
    except Exception:  # noqa: BLE001 -- not msgpack at all: nothing to show decoded
        pass
    try:
        messages = decode_batch(frames)
    except ProtocolError as exc:
        case.update(valid=False, error=exc.code)
        return case
    again = encode_batch(messages)
    reencoded = to_json(msgpack.unpackb(again[0], raw=False))
    case["valid"] = True
    if reencoded != case["decoded"]:
        case["reencoded"] = reencoded
    case["canonical"] = bytes(again[0]) == frames[0]
    if [bytes(f) for f in again[1:]] != frames[1:]:
        if b"compression" not in frames[0]:
            raise ValueError(f"vector {name}: payload frames do not survive a round trip")
        # Compressed frames are received plain: these are the frames that a re-encoding has.
        case["reencoded_frames"] = [bytes(f).hex() for f in again[1:]]
    return case


def payload_vectors() -> list[dict]:
    values = [
        ("task-arguments", [[16.0], {}]),
        ("a-key-reference", [[KeyRef("sqrt-1"), 1], {"scale": 2}]),
        ("a-non-ascii-key-reference", [[KeyRef("ключ-1")], {}]),
        ("nested-values", {"rows": [[1, "a", None, True], [2, "b", b"\x00\x01", False]]}),
    ]
    out = []
    for name, value in values:
        frame = _msgpack(value)
        out.append({"name": name, "section": "PROTOCOL.md#serializers", "serializer": "msgpack",
                    "hex": frame.hex(), "decoded": to_json(msgpack.unpackb(frame, raw=False))})
    return out


def argument_vectors() -> list[dict]:
    """Task arguments with extension types other than a key reference, and what the
    reference worker makes of them (PROTOCOL.md, Serializers)."""
    stamps = [msgpack.Timestamp(0, 0), msgpack.Timestamp(1796637600, 500_000_000)]
    frames = [
        ("task-arguments-with-an-application-extension-type",
         msgpack.packb([[msgpack.ExtType(5, b"x"), msgpack.ExtType(5, b"abc")], {}], **PACK)),
        # (type -5: msgpack's ExtType cannot hold a reserved type, so written by hand)
        ("task-arguments-with-a-reserved-extension-type", bytes.fromhex("9291d4fb0080")),
        ("task-arguments-with-timestamps", msgpack.packb([stamps, {"at": stamps[1]}], **PACK)),
    ]
    out = []
    for name, frame in frames:
        case: dict[str, Any] = {"name": name, "section": "PROTOCOL.md#serializers",
                                "serializer": "msgpack", "hex": frame.hex(),
                                "decoded": frame_to_json(frame)}
        try:
            arguments = msgpack_arguments_loads(frame)
        except SerializationError:
            case["task_arguments"] = "refused"
        else:
            case["task_arguments"] = "accepted"
            case["timestamps"] = [t.isoformat() for t in _in_order(arguments)
                                  if isinstance(t, datetime.datetime)]
        out.append(case)
    return out


def _in_order(value: Any) -> list[Any]:
    """The values inside arrays and maps (map values only), depth first."""
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _in_order(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _in_order(v)]
    return [value]


# -- the handshake --------------------------------------------------------------------------------


def _step(side: str, msg: Any) -> dict:
    frames = encode_batch([msg])
    [wire_map] = msgpack.unpackb(frames[0], raw=False)
    return {"from": side, "message": to_json(wire_map), "hex": frames_to_bytes(frames).hex()}


def _error_step(side: str, exc: ProtocolError) -> dict:
    return _step(side, Error(code=exc.code, message=exc.message))


def _failed(side: str, exc: ProtocolError) -> dict:
    return {"state": "failed", "code": exc.code, "detected_by": side, "message": exc.message}


def _play_live(initiator: InitiatorHandshake, acceptor: AcceptorHandshake) -> tuple[list, dict]:
    """Both sides live: the transcript and how it ended."""
    script: list[dict] = []
    outbox, side = initiator.start(), "C"
    while outbox:
        receiver, other = (acceptor, "S") if side == "C" else (initiator, "C")
        replies = []
        for msg in outbox:
            script.append(_step(side, msg))
            try:
                replies += receiver.receive(msg)
            except ProtocolError as exc:
                script.append(_error_step(other, exc))
                return script, _failed(other, exc)
        outbox, side = replies, other
    assert initiator.features == acceptor.features
    return script, {"state": "done", "version": acceptor.version, "role": acceptor.role,
                    "features": sorted(acceptor.features)}


def _play_scripted(acceptor: AcceptorHandshake, c_messages: list) -> tuple[list, dict]:
    """The initiator's messages fixed in advance; only the acceptor answers."""
    script: list[dict] = []
    for msg in c_messages:
        script.append(_step("C", msg))
        try:
            script += [_step("S", r) for r in acceptor.receive(msg)]
        except ProtocolError as exc:
            script.append(_error_step("S", exc))
            return script, _failed("S", exc)
    return script, {"state": "done", "version": acceptor.version, "role": acceptor.role,
                    "features": sorted(acceptor.features)}


def handshake_vectors() -> dict:
    def c(token=None, versions=(1, 1), role="client", name=None, nonce=NC,
          features=()) -> dict:
        return {"token": token, "versions": list(versions), "role": role, "name": name,
                "nonce": nonce.hex(), "features": list(features)}

    def s(token=None, versions=(1, 1), nonce=NS, features=()) -> dict:
        return {"token": token, "versions": list(versions), "nonce": nonce.hex(),
                "features": list(features)}

    recorded_c = [Hello(min_version=1, max_version=1, role="client", nonce=NC),
                  Authenticate(proof=compute_proof("s3cret", INITIATOR_LABEL, NS, NC))]
    cases = [
        # name, initiator setup (None: scripted), acceptor setup, scripted C messages, notes
        ("without-a-token", c(name="mini"), s(), None, ""),
        ("with-a-token", c(token="s3cret", role="worker"), s(token="s3cret"), None, ""),
        ("highest-common-version", c(versions=(1, 3)), s(versions=(2, 5)), None, ""),
        ("features-both-announce", c(features=["scatter-done", "zz-future"]),
         s(features=["scatter-done"]), None,
         "the connection agrees the features both sides listed; unknown names are ignored"),
        ("features-only-the-initiator-announces", c(features=["scatter-done"]), s(), None,
         "an acceptor that lists none (an older one) agrees to none"),
        ("features-with-a-token", c(token="s3cret", features=["scatter-done"]),
         s(token="s3cret", features=["scatter-done"]), None, ""),
        ("initiator-has-another-token", c(token="wrong"), s(token="s3cret"), None,
         "the initiator finds the acceptor's proof wrong and gives up first"),
        ("initiator-has-no-token", c(), s(token="s3cret"), None, ""),
        ("acceptor-has-no-token", c(token="s3cret"), s(), None,
         "an initiator with a token refuses to talk to a peer that cannot prove it"),
        ("version-mismatch", c(versions=(2, 3)), s(versions=(1, 1)), None,
         "the error message names both ranges"),
        ("unknown-role", c(role="admin"), s(), None, ""),
        ("replayed-proof", None, s(token="s3cret", nonce=NS_OTHER), recorded_c,
         "messages recorded from a handshake with another acceptor nonce"),
        ("wrong-proof", None, s(token="s3cret"),
         [recorded_c[0], Authenticate(proof=compute_proof("guess", INITIATOR_LABEL, NS, NC))],
         ""),
        ("short-nonce-with-a-token", None, s(token="s3cret"),
         [Hello(min_version=1, max_version=1, role="client", nonce=b"\x01\x02\x03\x04")], ""),
        ("message-before-hello", None, s(), [Submit(tasks=[])], ""),
        ("authenticate-without-a-challenge", None, s(),
         [Hello(min_version=1, max_version=1, role="client", nonce=NC),
          Authenticate(proof=bytes(32))], "the handshake is already over"),
    ]
    out = []
    for name, c_setup, s_setup, scripted, notes in cases:
        acceptor = AcceptorHandshake(token=s_setup["token"], versions=tuple(s_setup["versions"]),
                                     nonce=bytes.fromhex(s_setup["nonce"]),
                                     features=s_setup["features"])
        initiator = None
        if c_setup is not None:
            initiator = InitiatorHandshake(c_setup["role"], token=c_setup["token"],
                                           name=c_setup["name"],
                                           versions=tuple(c_setup["versions"]),
                                           nonce=bytes.fromhex(c_setup["nonce"]),
                                           features=c_setup["features"])
        if initiator is not None:
            script, result = _play_live(initiator, acceptor)
        else:
            script, result = _play_scripted(acceptor, scripted)
        case = {"name": name, "section": "PROTOCOL.md#handshake",
                "initiator": c_setup, "acceptor": s_setup, "script": script, "result": result}
        if notes:
            case["notes"] = notes
        out.append(case)
    out += _initiator_only_cases()
    return {
        "description": "Scripted handshakes. 'C' is the initiator (it connects), 'S' the "
                       "acceptor. 'initiator': null means C's messages are scripted (an "
                       "attacker or a broken peer) and only S is under test; 'acceptor': null "
                       "the reverse. Each step gives the message as JSON and the whole batch "
                       "in hex. An error step's 'message' text is only an example: its code "
                       "is normative. After an error step the connection closes.",
        "cases": out,
    }


def _initiator_only_cases() -> list[dict]:
    """A broken acceptor: only the initiator is under test."""
    setups = [
        ("authenticated-out-of-turn", None, [Authenticated()]),
        ("welcome-with-an-unknown-version", None, [Welcome(version=9, auth=False)]),
        ("welcome-proof-from-another-token", "s3cret",
         [Welcome(version=1, auth=True, nonce=NS,
                  proof=compute_proof("other", ACCEPTOR_LABEL, NC, NS))]),
    ]
    out = []
    for name, token, replies in setups:
        initiator = InitiatorHandshake("client", token=token, nonce=NC)
        script = [_step("C", m) for m in initiator.start()]
        result: dict = {}
        for reply in replies:
            script.append(_step("S", reply))
            try:
                script += [_step("C", m) for m in initiator.receive(reply)]
            except ProtocolError as exc:
                script.append(_error_step("C", exc))
                result = _failed("C", exc)
                break
        out.append({"name": name, "section": "PROTOCOL.md#handshake",
                    "initiator": {"token": token, "versions": [1, 1], "role": "client",
                                  "name": None, "nonce": NC.hex(), "features": []},
                    "acceptor": None, "script": script, "result": result})
    return out


# -- authentication -----------------------------------------------------------------------------


def auth_vectors() -> dict:
    long_token = "k" * 100  # longer than SHA-256's 64-byte block: HMAC hashes the key first
    cases = [
        ("acceptor-proof", "s3cret", ACCEPTOR_LABEL, NC, NS),
        ("initiator-proof", "s3cret", INITIATOR_LABEL, NS, NC),
        ("non-ascii-token-is-utf8", "pässwörd-🔑", ACCEPTOR_LABEL, NC, NS),
        ("long-token", long_token, INITIATOR_LABEL, NS, NC),
        ("zero-nonces", "s3cret", ACCEPTOR_LABEL, bytes(32), bytes(32)),
    ]
    return {
        "description": "proof = HMAC-SHA256(key = UTF-8 bytes of the token, message = label "
                       "|| first_nonce || second_nonce). The acceptor's proof uses the label "
                       "'dist acceptor' with the nonces (initiator's, acceptor's); the "
                       "initiator's uses 'dist initiator' with (acceptor's, initiator's).",
        "cases": [{"name": name, "section": "PROTOCOL.md#authentication", "token": token,
                   "label": label.decode(), "first_nonce": first.hex(),
                   "second_nonce": second.hex(), "message": (label + first + second).hex(),
                   "hmac": compute_proof(token, label, first, second).hex()}
                  for name, token, label, first, second in cases],
    }


# -- column blocks (feature columns) ----------------------------------------------------------

def _pickle_ref(frame: int) -> dict:
    return {"serializer": "pickle", "frames": [frame]}


def _tasks_block(**changes: Any) -> list:
    """A block of three compute-tasks of a map: a shared function and pickle tag, arguments
    and priorities of their own (frames 1-4 of the batch)."""
    block = ["compute-task", 3,
             {"key": ["inc-0", "inc-1", "inc-2"],
              "args": [_pickle_ref(2), _pickle_ref(3), _pickle_ref(4)],
              "priority": [0, -1, -2]},
             {"function": _pickle_ref(1), "pickled_with": "cpython-3.11"}]
    for index, value in changes.items():
        block[int(index[1:])] = value
    return block


TASK_FRAMES = [b"function", b"args-0", b"args-1", b"args-2"]
FINISHED = ["task-finished", 3, {"key": ["a", "b", "c"], "start": [1.5, 2.5, 3.5],
                                 "stop": [1.75, 2.75, 3.75]}, {"nbytes": 28, "type": "int"}]

# (name, frame 0 as a list of items, payload frames)
COLUMN_CASES: list[tuple[str, list, list[bytes]]] = [
    ("compute-tasks-of-a-map", [_tasks_block()], TASK_FRAMES),
    ("task-finished-sharing-their-size-and-type", [FINISHED], []),
    ("key-in-memory-with-absent-values", [
        ["key-in-memory", 3, {"key": ["a", "b", "c"],
                              "workers": [["10.0.0.5:40211"], None, ["10.0.0.6:40211"]]},
         {"nbytes": 28}]], []),
    ("free-keys", [["free-keys", 2, {"keys": [["a", "b"], ["c"]]}, {}]], []),
    ("a-block-between-messages", [{"op": "release", "keys": ["x"]},
                                  ["release", 2, {"keys": [["a"], ["b"]]}, {}],
                                  {"op": "release", "keys": ["y"]}], []),
    ("a-block-of-one", [["key-lost", 1, {"key": ["a"]}, {"message": "worker died"}]], []),
    ("every-field-shared-but-one-column", [["key-cancelled", 2, {"key": ["a", "a"]}, {}]], []),
    ("a-shared-list-each-message-has", [
        ["compute-task", 2, {"key": ["add-0", "add-1"]},
         {"function": "operator:add", "who_has": {"x": ["10.0.0.5:40211"]}}]], []),
    ("an-unknown-column-is-ignored", [
        ["key-cancelled", 2, {"key": ["a", "b"], "colour": ["red", "blue"]}, {"size": 3}]], []),
    ("nil-in-a-column-is-the-default", [
        ["task-finished", 2, {"key": ["a", "b"], "type": [None, "int"]}, {"nbytes": 1}]], []),
    ("a-submit-whose-tasks-are-a-column-list", [
        {"op": "submit", "tasks": {"count": 3, "columns": {"key": ["inc-0", "inc-1", "inc-2"],
                                                           "args": [_pickle_ref(2),
                                                                    _pickle_ref(3),
                                                                    _pickle_ref(4)]},
                                   "shared": {"function": _pickle_ref(1),
                                              "pickled_with": "cpython-3.11"}}}],
     TASK_FRAMES),
    ("column-lists-in-a-block", [
        ["submit", 2, {"tasks": [
            {"count": 2, "columns": {"key": ["a", "b"]}, "shared": {"function": "m:f"}},
            {"count": 2, "columns": {"key": ["c", "d"], "deps": [["a"], ["b"]]},
             "shared": {"function": "m:g"}}]}, {}]], []),
    # must be rejected:
    ("a-column-list-with-another-key", [
        {"op": "submit", "tasks": {"count": 1, "columns": {"key": ["a"]},
                                   "shared": {"function": "m:f"}, "more": 1}}], []),
    ("a-column-list-of-the-wrong-length", [
        {"op": "submit", "tasks": {"count": 2, "columns": {"key": ["a"]},
                                   "shared": {"function": "m:f"}}}], []),
    ("an-empty-column-list", [
        {"op": "submit", "tasks": {"count": 0, "columns": {}, "shared": {}}}], []),
    ("a-column-list-of-wrong-values", [
        {"op": "submit", "tasks": {"count": 2, "columns": {"key": ["a", "b"],
                                                           "priority": [1, "high"]},
                                   "shared": {"function": "m:f"}}}], []),
    ("a-column-of-the-wrong-length", [_tasks_block(c2={"key": ["inc-0", "inc-1"]})],
     TASK_FRAMES),
    ("a-count-of-zero", [["free-keys", 0, {"keys": []}, {}]], []),
    ("a-count-over-the-limit", [["free-keys", 100_001, {"keys": []}, {}]], []),
    ("a-count-that-is-a-bool", [["key-lost", True, {"key": ["a"]}, {"message": "m"}]], []),
    ("three-items", [["free-keys", 1, {"keys": [["a"]]}]], []),
    ("an-unknown-op", [["teleport", 1, {"key": ["a"]}, {}]], []),
    ("an-op-that-is-not-a-string", [[7, 1, {"key": ["a"]}, {}]], []),
    ("no-column", [["key-lost", 2, {}, {"key": "a", "message": "m"}]], []),
    ("a-field-in-both-maps", [["key-lost", 1, {"key": ["a"]}, {"key": "a", "message": "m"}]],
     []),
    ("op-as-a-column", [["key-lost", 1, {"key": ["a"], "op": ["key-lost"]}, {"message": "m"}]],
     []),
    ("columns-not-a-map", [["free-keys", 1, [["a"]], {}]], []),
    ("a-column-that-is-not-an-array", [["free-keys", 1, {"keys": "a"}, {}]], []),
    ("a-value-of-the-wrong-type", [["key-cancelled", 2, {"key": ["a", 2]}, {}]], []),
    ("a-required-field-in-neither-map", [["key-lost", 1, {"message": ["m"]}, {}]], []),
    ("a-block-inside-a-block", [["free-keys", 1, {"keys": [["free-keys", 1, {}, {}]]}, {}]],
     []),
    ("a-payload-naming-a-missing-frame", [_tasks_block(c3={"function": _pickle_ref(9)})],
     TASK_FRAMES),
    ("a-negative-size-shared", [FINISHED[:3] + [{"nbytes": -1}]], []),
]


def _frame_column(*indices: int | None) -> dict:
    return {"serializer": "pickle", "frames": list(indices)}


RESULT_FRAMES = [b"value-a", b"value-c"]
SMALL_RESULTS = ["key-in-memory", 3, {"key": ["a", "b", "c"],
                                      "value": _frame_column(1, None, 2)},
                 {"nbytes": 28, "type": "int", "workers": ["10.0.0.5:40211"]}]

# Read on a connection that agreed frame-columns as well (name, frame 0, payload frames).
FRAME_COLUMN_CASES: list[tuple[str, list, list[bytes]]] = [
    ("compute-tasks-whose-arguments-are-a-frame-column",
     [_tasks_block(c2={"key": ["inc-0", "inc-1", "inc-2"], "args": _frame_column(2, 3, 4),
                       "priority": [0, -1, -2]})], TASK_FRAMES),
    ("small-results-as-a-frame-column-with-an-absent-value", [SMALL_RESULTS], RESULT_FRAMES),
    ("a-submit-whose-arguments-are-a-frame-column", [
        {"op": "submit", "tasks": {"count": 3, "columns": {"key": ["inc-0", "inc-1", "inc-2"],
                                                           "args": _frame_column(2, 3, 4)},
                                   "shared": {"function": _pickle_ref(1),
                                              "pickled_with": "cpython-3.11"}}}],
     TASK_FRAMES),
    ("a-frame-column-naming-one-frame-twice",
     [_tasks_block(c2={"key": ["inc-0", "inc-1", "inc-2"], "args": _frame_column(2, 2, 3),
                       "priority": [0, -1, -2]})], TASK_FRAMES[:3]),
    # must be rejected:
    ("a-frame-column-of-the-wrong-length",
     [SMALL_RESULTS[:2] + [{"key": ["a", "b", "c"], "value": _frame_column(1, 2)},
                           SMALL_RESULTS[3]]], RESULT_FRAMES),
    ("a-frame-column-with-another-key",
     [SMALL_RESULTS[:2] + [{"key": ["a", "b", "c"],
                            "value": {**_frame_column(1, None, 2), "compression": None}},
                           SMALL_RESULTS[3]]], RESULT_FRAMES),
    ("a-frame-column-naming-a-missing-frame",
     [SMALL_RESULTS[:2] + [{"key": ["a", "b", "c"], "value": _frame_column(1, None, 3)},
                           SMALL_RESULTS[3]]], RESULT_FRAMES),
    ("a-frame-column-naming-frame-zero",
     [SMALL_RESULTS[:2] + [{"key": ["a", "b", "c"], "value": _frame_column(0, None, 2)},
                           SMALL_RESULTS[3]]], RESULT_FRAMES),
    ("a-frame-column-with-an-index-that-is-not-an-int",
     [SMALL_RESULTS[:2] + [{"key": ["a", "b", "c"], "value": _frame_column(1, None, 2.0)},
                           SMALL_RESULTS[3]]], RESULT_FRAMES),
    ("a-frame-column-of-an-unknown-serializer",
     [SMALL_RESULTS[:2] + [{"key": ["a", "b", "c"],
                            "value": {"serializer": "yaml", "frames": [1, None, 2]}},
                           SMALL_RESULTS[3]]], RESULT_FRAMES),
    ("a-frame-column-for-a-field-that-is-no-payload",
     [SMALL_RESULTS[:2] + [{"key": _frame_column(1, None, 2)}, SMALL_RESULTS[3]]],
     RESULT_FRAMES),
]


def column_vectors() -> dict:
    out = []
    for name, items, payload, frame_columns in (
            [(*case, False) for case in COLUMN_CASES]
            + [(*case, True) for case in FRAME_COLUMN_CASES]):
        frames = [msgpack.packb(items, **PACK), *payload]
        case: dict[str, Any] = {"name": name, "section": "PROTOCOL.md#column-blocks",
                                "frames": [f.hex() for f in frames],
                                "decoded": to_json(msgpack.unpackb(frames[0], raw=False))}
        if frame_columns:
            case["frame_columns"] = True
        try:
            messages = decode_batch(frames, columnar=True, frame_columns=frame_columns)
        except ProtocolError as exc:
            case.update(valid=False, error=exc.code)
            out.append(case)
            continue
        as_maps = encode_batch(messages)
        (again,) = encode_batches(messages, DEFAULT_LIMITS.max_frames, columnar=True,
                                  frame_columns=frame_columns)
        case["valid"] = True
        case["messages"] = to_json(msgpack.unpackb(as_maps[0], raw=False))
        case["messages_frames"] = [bytes(f).hex() for f in as_maps[1:]]
        reencoded = to_json(msgpack.unpackb(again[0], raw=False))
        if reencoded != case["decoded"]:
            case["reencoded"] = reencoded
        case["canonical"] = bytes(again[0]) == frames[0] and [
            bytes(f) for f in again[1:]] == frames[1:]
        out.append(case)
    return {
        "description": "Column blocks, read on a connection that agreed the feature columns "
                       "(and frame-columns, where a case says 'frame_columns'): "
                       "'frames' and 'decoded' as in messages.json. A valid case gives "
                       "'messages': the same messages as message maps in their canonical "
                       "encoding (frame 0, decoded), with 'messages_frames' their payload "
                       "frames (hex) -- what the block stands for; 'reencoded', when it "
                       "differs from 'decoded', is the canonical block of those messages "
                       "(PROTOCOL.md, Column blocks) and 'canonical' says whether the case's "
                       "frames are it. An invalid case gives the error code.",
        "cases": out,
    }


def all_vectors() -> dict[str, dict]:
    return {"framing": framing_vectors(), "messages": message_vectors(),
            "columns": column_vectors(), "handshake": handshake_vectors(),
            "auth": auth_vectors(), "keys": key_vectors()}
