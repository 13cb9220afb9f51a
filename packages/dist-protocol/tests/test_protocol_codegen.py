"""The generated codec against the reference converters and encoders of ``wiretypes``: for any
wire map the same message or the same error (kind, code and text), for any message the same
bytes and frames."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import pickle

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings

from dist_protocol import strategies as wire
from dist_protocol.errors import InvalidMessage, ProtocolError
from dist_protocol.messages import (OPS, Environment, Submit, TaskFinished, TaskSpec,
                                    decode_batch, encode_batch)
from dist_protocol.serialize import Payload
from dist_protocol.testing import _example_record, example_message
from dist_protocol.wiretypes import BatchFrames, record_converter, record_encoder

pytestmark = pytest.mark.timeout(300)

FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FRAMES = [b"", b"one", b"two", b"three"]


class Text(str):
    """A str that is not exactly ``str``: the generated checks leave it to the reference."""


ODD_VALUES = [
    None, True, False, 0, -1, 1, 2**64 - 1, -(2**63), 1.5, -0.5, math.nan, math.inf, -math.inf,
    "", "s", Text("s"), b"b", bytearray(b"b"), [], ["a"], [1], [None], ["a", 2], [Text("a")],
    {}, {"a": 1}, {"a": -1}, {"a": 0.5}, {"a": -0.5}, {"a": math.nan}, {"a": math.inf},
    {1: "a"}, {"a": ["b"]}, {"a": [1]}, {"a": "b"}, {"a": True}, {"a": None},
    {"serializer": "pickle", "frames": [1]}, {"serializer": "pickle", "frames": [1, 2]},
    {"serializer": "msgpack", "frames": [1, 2]}, {"serializer": "yaml", "frames": [1]},
    {"serializer": "bytes", "frames": [0]}, {"serializer": "bytes", "frames": [9]},
    {"serializer": ["x"], "frames": [1]}, {"serializer": "pickle", "frames": [True]},
    {"serializer": "pickle", "frames": []}, {"serializer": "pickle", "frames": "1"},
    {"serializer": "bytes", "frames": [2], "extra": 1}, {"frames": [1]},
    {"serializer": "bytes", "frames": [1], "compression": [None]},
    {"serializer": "bytes", "frames": [1], "compression": ["nope"]},
    {"key": "k", "function": "m:f"}, {"key": 1, "function": "m:f"},
    {"implementation": "cpython", "python": "3.11"}, {"implementation": 3, "python": "3.11"},
]


def outcome(decode, value):
    """What decoding ``value`` gives: the message, or the error's kind, code and text."""
    try:
        return ("message", decode(value, BatchFrames(list(FRAMES))))
    except ProtocolError as exc:
        return ("error", type(exc), exc.code, exc.message)


REFERENCE = {cls: record_converter(cls) for cls in OPS.values()}


def comparable(value):
    """``value`` with NaN equal to NaN: from Python 3.13 a dataclass compares its fields one by
    one with ``==`` (no identity shortcut), so a NaN field makes a message unequal to itself."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value), tuple(comparable(getattr(value, f.name))
                                  for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return type(value), tuple(comparable(item) for item in value)
    if isinstance(value, dict):
        return type(value), tuple((key, comparable(item)) for key, item in value.items())
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def assert_same_outcome(cls, value):
    pristine = copy.deepcopy(value)  # (the generated decoder replaces a list's maps by records)
    generated = outcome(cls._decode, value)  # generated on its first use
    reference = outcome(REFERENCE[cls], pristine)
    assert comparable(generated) == comparable(reference), (cls.__name__, value)
    assert cls._decode.__name__ == f"decode_{cls.__name__}"  # not the reference itself
    if generated[0] == "message":
        assert type(generated[1]) is cls


def wire_map(message):
    return record_encoder(type(message))(message, [b""], {})


def variants(value):
    """``value`` (a wire map), and the same with one field (of it, or of the first record in
    it) missing, or set to each odd value."""
    yield value
    for name in list(value):
        yield {k: v for k, v in value.items() if k != name}
        for odd in ODD_VALUES:
            yield {**value, name: odd}
        inner = value[name]
        if type(inner) is list and inner and type(inner[0]) is dict:  # submit's tasks
            for changed in variants(inner[0]):
                yield {**value, name: [changed, *inner[1:]]}
        if type(inner) is dict and name == "environment":
            for changed in variants(inner):
                yield {**value, name: changed}


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_odd_field_value_gets_the_reference_answer(op):
    cls = OPS[op]
    for full in (False, True):
        for value in variants(wire_map(example_message(cls, full))):
            assert_same_outcome(cls, value)


def test_task_specs_inside_a_submit_get_the_reference_answer():
    task = wire_map(TaskSpec(key="k", function=Payload("pickle", [b"f"]), deps=["a"],
                             resources={"GPU": 1.0}, workers=["w"], max_restarts=2))
    task["function"] = {"serializer": "pickle", "frames": [1]}
    for changed in variants(task):
        assert_same_outcome(Submit, {"tasks": [changed], "op": "submit"})
    assert_same_outcome(Submit, {"tasks": [task, 7], "op": "submit"})
    assert_same_outcome(Submit, {"tasks": "nope", "op": "submit"})


def test_a_submit_read_from_the_wire_keeps_no_map_of_its_tasks():
    tasks = [wire_map(TaskSpec(key=f"k{i}", function="m:f", deps=[f"k{i - 1}"] if i else []))
             for i in range(3)]
    value = {"tasks": tasks, "op": "submit"}

    message = Submit._decode(value, BatchFrames(list(FRAMES)))

    # Each map gave way to its record as it was read: a graph's specs are not held twice.
    assert [type(item) for item in tasks] == [TaskSpec] * 3
    assert [spec.key for spec in message.tasks] == ["k0", "k1", "k2"]
    assert message.tasks[2].deps == ["k1"]


def test_task_specs_read_from_the_wire_share_one_pickle_tag():
    tasks = [wire_map(TaskSpec(key=f"k{i}", function="m:f", pickled_with="cpython-3.11"))
             for i in range(2)]
    tasks[1]["pickled_with"] = "".join(["cpython-", "3.11"])  # a copy, as msgpack reads it
    assert tasks[0]["pickled_with"] is not tasks[1]["pickled_with"]

    message = Submit._decode({"tasks": tasks, "op": "submit"}, BatchFrames(list(FRAMES)))

    assert message.tasks[0].pickled_with == "cpython-3.11"
    assert message.tasks[0].pickled_with is message.tasks[1].pickled_with


def test_a_submit_whose_later_task_goes_the_reference_way_keeps_the_earlier_ones():
    good = wire_map(TaskSpec(key="a", function="m:f"))
    odd = {**wire_map(TaskSpec(key="b", function="m:f")), "key": Text("b")}

    message = Submit._decode({"tasks": [good, odd], "op": "submit"}, BatchFrames(list(FRAMES)))

    assert [spec.key for spec in message.tasks] == ["a", "b"]
    assert all(type(spec) is TaskSpec for spec in message.tasks)


@FAST
@given(frames=wire.batches())
def test_message_like_maps_get_the_reference_answer(frames):
    for item in msgpack.unpackb(frames[0], raw=False, strict_map_key=True):
        cls = OPS.get(item.get("op")) if type(item.get("op")) is str else None
        if cls is not None:
            assert_same_outcome(cls, item)


@FAST
@given(messages=wire.messages())
def test_the_generated_encoder_writes_the_reference_bytes(messages):
    cls = type(messages)
    generated_frames, reference_frames = [b""], [b""]
    generated = cls._encode(messages, generated_frames, {})
    reference = {**record_encoder(cls)(messages, reference_frames, {}), "op": cls.op}
    assert msgpack.packb(generated) == msgpack.packb(reference)
    assert generated_frames == reference_frames


@pytest.mark.parametrize("op", sorted(OPS))
def test_decoded_messages_are_the_real_immutable_class(op):
    cls = OPS[op]
    message = example_message(cls, True)
    (decoded,) = decode_batch(encode_batch([message]))
    assert type(decoded) is cls and decoded == message
    assert pickle.loads(pickle.dumps(decoded)) == decoded
    assert dataclasses.replace(decoded) == decoded
    for field in dataclasses.fields(cls)[:1]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(decoded, field.name, None)


def test_a_payload_whose_serializer_is_not_a_string_is_an_invalid_message():
    batch = [msgpack.packb([{"op": "task-finished", "key": "a", "nbytes": 1,
                             "value": {"serializer": ["x"], "frames": [1]}}]), b"x"]
    with pytest.raises(InvalidMessage, match="unknown serializer"):
        decode_batch(batch)


def test_messages_of_a_batch_share_one_payload_read_back():
    function = Payload("pickle", [b"f"])
    sent = [TaskFinished(key=str(i), nbytes=1, value=function) for i in range(3)]
    received = decode_batch(encode_batch(sent))
    assert received == sent
    assert received[0].value is received[1].value is received[2].value


@pytest.mark.parametrize("cls", [*OPS.values(), TaskSpec, Environment], ids=lambda c: c.__name__)
def test_the_generated_init_takes_what_the_dataclass_init_takes(cls):
    reference = dataclasses.dataclass(frozen=True, slots=True)(
        type(cls.__name__, (), {"__annotations__": {f.name: f.type for f in
                                                    dataclasses.fields(cls)},
                                **{f.name: dataclasses.field(default=f.default,
                                                             default_factory=f.default_factory)
                                   for f in dataclasses.fields(cls)}}))
    assert str(inspect.signature(cls)) == str(inspect.signature(reference))
    full, minimal = example_message_or_record(cls, True), example_message_or_record(cls, False)
    for made in (full, minimal):
        kwargs = {f.name: getattr(made, f.name) for f in dataclasses.fields(cls)}
        assert cls(**kwargs) == made
        assert cls(*kwargs.values()) == made
        assert dataclasses.asdict(cls(**kwargs)) == dataclasses.asdict(reference(**kwargs))
    required = {f.name: getattr(full, f.name) for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING}
    one, two = cls(**required), cls(**required)
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:  # a fresh default per instance
            assert getattr(one, f.name) == f.default_factory()
            assert getattr(one, f.name) is not getattr(two, f.name)
    with pytest.raises(TypeError, match="unexpected keyword argument 'not_a_field'"):
        cls(**required, not_a_field=1)
    for f in dataclasses.fields(cls)[:1]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(one, f.name, getattr(two, f.name))


def example_message_or_record(cls, full):
    if cls in OPS.values():
        return example_message(cls, full)
    return _example_record(cls, full)
