"""Messages: every op round-trips (through real bytes, decoded three ways); what validation
rejects, with which code; what it ignores."""
from __future__ import annotations

import re

import msgpack
import pytest

from dist_protocol.errors import InvalidMessage, ProtocolError, UnknownOp
from dist_protocol.framing import frames_to_bytes
from dist_protocol.messages import (OPS, Data, Error, GetData, Hello, KeyInMemory, Release,
                                    Submit, TaskSpec, WhoHas, decode_batch, describe_ops,
                                    encode_batch, encode_batches)
from dist_protocol.serialize import Payload
from dist_protocol.testing import decode_three_ways, example_message

pytestmark = pytest.mark.timeout(30)

ALL_OPS = sorted(OPS)


def round_trip(messages: list) -> list:
    """Encode, frame, decode the bytes three ways, validate."""
    [frames] = decode_three_ways(frames_to_bytes(encode_batch(messages)), small_chunk=3)
    return decode_batch(frames)


def wire(*maps: dict, frames: tuple = ()) -> list:
    return [msgpack.packb(list(maps), use_bin_type=True), *frames]


def rejects(frames: list, code: str, match: str = "") -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_batch(frames)
    assert caught.value.code == code, caught.value
    assert re.search(match, caught.value.message), caught.value.message
    return caught.value


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("full", [False, True], ids=["required-fields", "every-field"])
def test_every_op_round_trips(op, full):
    message = example_message(OPS[op], full=full)
    assert round_trip([message]) == [message]


def test_a_batch_mixes_ops_and_keeps_their_order():
    messages = [example_message(OPS[op], full=True) for op in ALL_OPS]
    assert round_trip(messages) == messages


def test_payloads_travel_as_frames_after_frame_0():
    big = Payload("pickle", [b"head", bytearray(b"out-of-band buffer")])
    frames = encode_batch([Data(id=1, data={"k": big})])
    assert frames[1:] == [b"head", bytearray(b"out-of-band buffer")]
    wire_map = msgpack.unpackb(frames[0])[0]
    assert wire_map["data"] == {"k": {"serializer": "pickle", "frames": [1, 2]}}


def test_a_payload_sent_twice_in_a_batch_travels_once():
    shared = Payload("bytes", [b"x" * 100])
    frames = encode_batch([Data(id=1, data={"a": shared}), Data(id=2, data={"b": shared})])
    assert len(frames) == 2
    first, second = decode_batch(frames)
    assert first.data["a"] == second.data["b"] == shared


def test_a_task_names_its_function_by_import_path_or_payload():
    by_path = TaskSpec(key="sqrt-1", function="math:sqrt",
                       args=Payload("msgpack", [msgpack.packb([[4.0], {}])]))
    pickled = TaskSpec(key="f-1", function=Payload("pickle", [b"\x80\x05."]), deps=["sqrt-1"])
    assert round_trip([Submit(tasks=[by_path, pickled])]) == [Submit(tasks=[by_path, pickled])]


def test_unset_optional_fields_are_left_out_of_the_map():
    [wire_map] = msgpack.unpackb(encode_batch([KeyInMemory(key="k")])[0])
    assert wire_map == {"op": "key-in-memory", "key": "k", "nbytes": 0, "type": ""}


def test_encode_batches_cuts_batches_at_the_frame_count():
    messages = [Data(id=i, data={"k": Payload("bytes", [b"%d" % i])}) for i in range(10)]
    batches = encode_batches(messages, max_frames=4)
    assert all(len(frames) <= 4 for frames in batches)
    assert [m for frames in batches for m in decode_batch(frames)] == messages


# -- what validation ignores ------------------------------------------------------------------


def test_unknown_fields_are_ignored():
    frames = wire({"op": "release", "keys": ["a"], "added-in-version-9": {"x": [1, 2]}})
    assert decode_batch(frames) == [Release(keys=["a"])]


def test_nil_for_an_optional_field_means_unset():
    frames = wire({"op": "key-in-memory", "key": "k", "workers": None})
    assert decode_batch(frames) == [KeyInMemory(key="k")]


def test_the_order_of_keys_in_a_map_does_not_matter():
    frames = wire({"keys": ["b"], "id": 4, "op": "who-has"})
    assert decode_batch(frames) == [WhoHas(id=4, keys=["b"])]


def test_a_float_field_accepts_an_integer():
    assert decode_batch(wire({"op": "restart", "id": 1, "timeout": 3}))[0].timeout == 3


def test_an_empty_batch_is_valid():
    assert decode_batch(wire()) == []


def test_unused_payload_frames_are_allowed():
    assert decode_batch(wire({"op": "release", "keys": []}, frames=(b"spare",))) == [
        Release(keys=[])]


# -- what validation rejects --------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
def test_each_required_field_is_required(op):
    cls = OPS[op]
    full = msgpack.unpackb(encode_batch([example_message(cls, full=True)])[0])[0]
    for field in (f for f in cls.fields if f.required):
        without = {k: v for k, v in full.items() if k != field.name}
        rejects(wire(without, frames=(b"p", b"p", b"p")), "invalid-message",
                f"missing field '{field.name}'")


@pytest.mark.parametrize("op", ALL_OPS)
def test_each_typed_field_rejects_a_value_of_another_type(op):
    cls = OPS[op]
    full = msgpack.unpackb(encode_batch([example_message(cls, full=True)])[0])[0]
    for field in (f for f in cls.fields if f.type != "any"):
        # No wire type accepts an extension value where it expects one of its own.
        wrong = {**full, field.name: msgpack.ExtType(42, b"")}
        rejects(wire(wrong, frames=(b"p", b"p", b"p")), "invalid-message", field.name)


@pytest.mark.parametrize("value, expected", [
    ("abc", "expected list, got str"),
    ([1], "expected str, got int"),
    (None, "expected list, got NoneType"),
    ({"a": 1}, "expected list, got dict"),
])
def test_wrong_types_name_the_field_and_the_type(value, expected):
    rejects(wire({"op": "release", "keys": value}), "invalid-message",
            rf"Release\.keys: {expected}")


@pytest.mark.parametrize("value", [True, 1.5, "7", None, b"\x07"])
def test_an_int_field_rejects_bools_floats_strings_nil_and_bytes(value):
    rejects(wire({"op": "who-has", "id": value, "keys": []}), "invalid-message", "id")


def test_a_bool_field_rejects_an_int():
    rejects(wire({"op": "welcome", "version": 1, "auth": 1}), "invalid-message", "auth")


def test_a_map_field_needs_string_keys():
    rejects(wire({"op": "keys-added", "keys": {b"k": 1}}), "invalid-message", "string")


def test_errors_inside_records_name_the_path():
    task = {"key": 7, "function": "math:sqrt"}
    rejects(wire({"op": "submit", "tasks": [task]}), "invalid-message",
            r"Submit\.tasks: TaskSpec\.key: expected str")


@pytest.mark.parametrize("function, expected", [
    (7, r"expected str\|payload, got int"),
    (["math:sqrt"], r"expected str\|payload, got list"),
    ({"serializer": "yaml", "frames": [1]}, "unknown serializer 'yaml'"),
    ({"serializer": "pickle", "frames": [5]}, "payload frame index 5 is not a frame"),
])
def test_a_function_that_is_neither_a_path_nor_a_payload_is_rejected(function, expected):
    """``str | Payload``: only the option of the value's kind is tried, so a payload map with
    something wrong inside says what, rather than that it is not a string."""
    task = {"key": "k", "function": function}
    rejects(wire({"op": "submit", "tasks": [task]}, frames=(b"p",)), "invalid-message",
            rf"TaskSpec\.function: {expected}")


def test_an_unknown_op_is_an_unknown_op_error():
    error = rejects(wire({"op": "teleport", "where": "mars"}), "unknown-op", "teleport")
    assert isinstance(error, UnknownOp) and isinstance(error, InvalidMessage)


@pytest.mark.parametrize("item", [{"keys": []}, {"op": 7}, {"op": None}])
def test_a_message_without_a_string_op_is_rejected(item):
    rejects(wire(item), "unknown-op", "without an op")


@pytest.mark.parametrize("indices, frames, match", [
    ([0], (b"x",), "index 0"),          # frame 0 is the message list itself
    ([2], (b"x",), "index 2"),          # past the end of the batch
    ([-1], (b"x",), "index -1"),
    ([True], (b"x",), "index True"),
    (["1"], (b"x",), "index '1'"),
    ([], (b"x",), "non-empty list"),
    (1, (b"x",), "non-empty list"),
])
def test_a_payload_must_reference_frames_of_its_batch(indices, frames, match):
    payload = {"serializer": "bytes", "frames": indices}
    rejects(wire({"op": "put-data", "id": 1, "data": {"k": payload}}, frames=frames),
            "invalid-message", match)


def test_a_payload_names_a_known_serializer():
    payload = {"serializer": "yaml", "frames": [1]}
    rejects(wire({"op": "put-data", "id": 1, "data": {"k": payload}}, frames=(b"x",)),
            "invalid-message", "unknown serializer 'yaml'")


@pytest.mark.parametrize("frame0, match", [
    (b"", "not valid msgpack"),
    (b"\xc1", "not valid msgpack"),                          # a byte msgpack never uses
    (msgpack.packb([]) + b"\x00", "not valid msgpack"),      # trailing bytes
    (b"\x92\xa1", "not valid msgpack"),                      # truncated
    (msgpack.packb({"op": "release"}), "must be a msgpack list"),
    (msgpack.packb(["release"]), "each message must be a map"),
    (msgpack.packb([{1: 2}]), "not valid msgpack"),           # map keys must be strings
    (b"\x91" * 5000 + b"\xc0", "not valid msgpack"),          # nested beyond any sense
])
def test_frame_0_must_be_a_msgpack_list_of_maps(frame0, match):
    rejects([frame0], "invalid-message", match)


def test_every_op_is_kebab_case_with_a_direction():
    for op, spec in describe_ops().items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", op), op
        assert spec["direction"] and spec["since"] >= 1
        for direction in spec["direction"]:
            assert re.fullmatch(r"[a-z]+->[a-z]+", direction), (op, direction)


def test_messages_are_frozen_values():
    hello = Hello(min_version=1, max_version=1, role="client")
    with pytest.raises(AttributeError):
        hello.role = "worker"
    assert hello == Hello(min_version=1, max_version=1, role="client")
    assert Error(code="x", message="y").op == "error"
    assert GetData(id=1, keys=[]).serializers is None
