"""Payloads: msgpack (with KeyRef as extension type 1), pickle with protocol-5 out-of-band
buffers as separate frames, raw bytes."""
from __future__ import annotations

import io
import mmap
import os
import pickle
import sys
import types
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import msgpack
import numpy as np
import pytest

from dist_protocol.framing import FrameDecoder, frames_to_bytes
from dist_protocol.messages import PutData, decode_batch, encode_batch
from dist_protocol.serialize import (KEYREF_EXT, KeyRef, Payload, SerializationError,
                                     deserialize, deserialize_pickle_frame,
                                     deserialize_received, dumps_function, msgpack_dumps,
                                     msgpack_loads, pickle_dumps, serialize, serialize_plain)
from dist_protocol.testing import decode_three_ways

pytestmark = pytest.mark.timeout(30)


# -- msgpack ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, -5, 2**64 - 1, 1.5, "ünïcode", b"\x00\xff",
                                   [1, [2, {"a": b"b"}]], {"nested": {"x": [None]}}])
def test_msgpack_round_trips_plain_values(value):
    payload = serialize(value, ["msgpack"])
    assert payload.serializer == "msgpack" and len(payload.frames) == 1
    assert deserialize(payload) == value


def test_msgpack_sends_tuples_and_sets_as_arrays():
    assert deserialize(serialize((1, 2), ["msgpack"])) == [1, 2]
    assert deserialize(serialize({3}, ["msgpack"])) == [3]


def test_a_keyref_is_extension_type_1_holding_the_key_in_utf8():
    assert KEYREF_EXT == 1
    assert msgpack_dumps(KeyRef("inc-1")) == b"\xc7\x05\x01inc-1"
    assert msgpack_dumps(KeyRef("x")) == b"\xd4\x01x"  # fixext 1
    assert msgpack_loads(b"\xc7\x05\x01inc-1") == KeyRef("inc-1")


def test_keyrefs_inside_task_arguments_round_trip():
    args = [[KeyRef("a-1"), 2, [KeyRef("b-2")]], {"scale": KeyRef("ключ")}]
    assert deserialize(serialize(args, ["msgpack"])) == args


def test_other_extension_types_are_kept_as_they_are():
    data = msgpack.packb(msgpack.ExtType(9, b"opaque"))
    assert msgpack_loads(data) == msgpack.ExtType(9, b"opaque")


def test_msgpack_refuses_what_it_cannot_represent():
    with pytest.raises(SerializationError, match="msgpack"):
        serialize(object(), ["msgpack"])


# -- pickle -----------------------------------------------------------------------------------


def test_pickle_round_trips_python_objects():
    value = {"complex": 1 + 2j, "range": range(3), "frozen": frozenset({1})}
    payload = serialize(value)
    assert payload.serializer == "pickle"
    assert deserialize(payload) == value


def test_a_numpy_array_travels_as_an_out_of_band_frame_without_a_copy():
    array = np.arange(100_000, dtype="float64")
    payload = serialize(array)
    head, buffer = payload.frames
    assert memoryview(buffer).nbytes == array.nbytes
    assert len(head) < 1000  # the data is not in the pickle stream
    assert np.shares_memory(np.frombuffer(buffer, dtype="float64"), array)
    assert np.array_equal(deserialize(payload), array)


def test_several_arrays_give_one_frame_each():
    arrays = [np.ones(1000), np.zeros((20, 30), dtype="int32")]
    payload = serialize(arrays)
    assert len(payload.frames) == 3
    assert all(np.array_equal(a, b) for a, b in zip(deserialize(payload), arrays))


def test_out_of_band_frames_survive_the_wire():
    array = np.arange(50_000, dtype="int64").reshape(500, 100)
    frames = encode_batch([PutData(id=1, data={"a": serialize(array)})])
    assert len(frames) == 3  # messages, the pickle stream, the array's buffer
    [received] = decode_three_ways(frames_to_bytes(frames), small_chunk=7777)
    [message] = decode_batch(received)
    assert np.array_equal(deserialize(message.data["a"]), array)


@pytest.mark.parametrize("shape", [[2] * 27, (4096, 4096)])
def test_a_broadcast_array_travels_as_the_data_it_repeats(shape):
    """``np.broadcast_to`` repeats a little data by zero strides; pickled as it looks, a GiB
    (``[2] * 27``: what dask's own tensordot test computes). It travels as what it repeats,
    and comes back equal, broadcast and read-only as it was."""
    row = np.arange(shape[-1], dtype="float64") if isinstance(shape, tuple) else 1
    array = np.broadcast_to(row, shape)
    payload = serialize(array)
    assert payload.nbytes < 64 * 1024
    back = deserialize(payload)
    assert back.shape == array.shape and back.dtype == array.dtype
    assert not back.flags.writeable and 0 in back.strides
    assert np.array_equal(back[(0,) * (back.ndim - 1)], array[(0,) * (array.ndim - 1)])


def test_arrays_that_are_not_broadcast_travel_as_before():
    writeable = np.lib.stride_tricks.as_strided(np.zeros(1), (100_000,), (0,))
    frozen = np.arange(100_000.0)
    frozen.flags.writeable = False
    for array in (writeable, frozen, np.broadcast_to(np.arange(10.0), (100, 10))):
        payload = serialize(array)
        assert payload.nbytes >= array.nbytes
        assert np.array_equal(deserialize(payload), array)


def test_values_pickle_while_numpy_is_half_imported_on_another_thread(monkeypatch):
    """A thread importing numpy leaves it in ``sys.modules`` without its names until the
    import ends: a worker's result (or a client's argument) pickled meanwhile failed with
    numpy's ``AttributeError``."""
    monkeypatch.setitem(sys.modules, "numpy", types.ModuleType("numpy"))
    assert pickle.loads(pickle_dumps({"a": [1, 2]})) == {"a": [1, 2]}


def test_functions_and_lambdas_pickle_by_value_when_needed():
    offset = 10
    payload = serialize(lambda x: x + offset)
    assert deserialize(payload)(1) == 11
    assert deserialize(dumps_function(len))([1, 2]) == 2


def test_what_a_module_registered_by_value_holds_travels_by_value(tmp_path, monkeypatch):
    # (the far side may not have the module: that is why the user registered it)
    import sys

    (tmp_path / "only_here_module.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here_module

    cloudpickle.register_pickle_by_value(only_here_module)
    try:
        payload = serialize([only_here_module.triple, 2])
    finally:
        cloudpickle.unregister_pickle_by_value(only_here_module)
    monkeypatch.delitem(sys.modules, "only_here_module")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    function, argument = deserialize(payload)
    assert function(argument) == 6
    assert "only_here_module" not in sys.modules


def test_the_pickle_stream_is_protocol_5():
    head = serialize({"a": 1}).frames[0]
    assert head[:2] == b"\x80\x05"
    assert pickle.loads(head) == {"a": 1}


def test_pickle_may_be_refused():
    with pytest.raises(SerializationError, match="not accepted"):
        deserialize(serialize([1]), allow_pickle=False)


# -- bytes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"raw", bytearray(b"raw"), memoryview(b"raw")])
def test_bytes_travel_as_one_frame_unchanged(value):
    payload = serialize(value, ["bytes"])
    assert payload.frames == [value]
    assert deserialize(payload) == b"raw" and type(deserialize(payload)) is bytes


def test_the_first_serializer_that_can_represent_the_value_wins():
    assert serialize(b"x", ["bytes", "pickle"]).serializer == "bytes"
    assert serialize([1], ["bytes", "msgpack", "pickle"]).serializer == "msgpack"
    assert serialize(object(), ["bytes", "msgpack", "pickle"]).serializer == "pickle"


def test_when_no_serializer_fits_each_failure_is_named():
    with pytest.raises(SerializationError) as caught:
        serialize(object(), ["bytes", "msgpack", "yaml"])
    assert all(name in str(caught.value) for name in ("bytes:", "msgpack:", "yaml:"))


# -- malformed payloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("payload, match", [
    (Payload("msgpack", [b"\xc1"]), "cannot deserialize msgpack"),
    (Payload("msgpack", [b"\x01", b"\x02"]), "exactly one frame"),
    (Payload("bytes", []), "exactly one frame"),
    (Payload("pickle", []), "at least one frame"),
    (Payload("pickle", [b"not a pickle"]), "cannot deserialize pickle"),
    (Payload("yaml", [b"a: 1"]), "unknown serializer"),
])
def test_malformed_payloads_raise_serialization_errors(payload, match):
    with pytest.raises(SerializationError, match=match):
        deserialize(payload)


class _ExitsWhenLoaded:
    def __reduce__(self):
        return (sys.exit, (3,))


@pytest.mark.parametrize("frame", [pickle.dumps(41), b"not a pickle",
                                   pickle.dumps(_ExitsWhenLoaded())])
def test_a_lone_pickle_frame_reads_as_its_payload_does(frame):
    try:
        expected: object = deserialize(Payload("pickle", [frame]))
    except SerializationError as exc:
        with pytest.raises(SerializationError) as raised:
            deserialize_pickle_frame(frame)
        assert str(raised.value) == str(exc)
    else:
        assert deserialize_pickle_frame(frame) == expected


def test_payloads_compare_by_serializer_and_bytes():
    assert Payload("bytes", [b"a"]) == Payload("bytes", [bytearray(b"a")])
    assert Payload("bytes", [b"a"]) != Payload("msgpack", [b"a"])
    assert Payload("pickle", [b"ab", b"cde"]).nbytes == 5


# -- a process whose pickle and msgpack a task replaced ------------------------------------


def _broken(*args, **kwargs):
    raise AssertionError("the replaced function was called")


class _BrokenPacker:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the replaced Packer was made")


def test_replacing_pickle_and_msgpack_functions_leaves_payloads_and_batches_alone(monkeypatch):
    """A task runs in its worker's process; one that patches these (a library that wraps
    pickle, say) must not change what the worker sends and reads. (cloudpickle is imported
    by then: a worker's first task function, pickled by value, imports it.)"""
    for module, name in [(pickle, "dumps"), (pickle, "loads"), (pickle, "Pickler"),
                         (msgpack, "packb"), (msgpack, "unpackb"), (msgpack, "ExtType")]:
        monkeypatch.setattr(module, name, _broken)
    monkeypatch.setattr(msgpack, "Packer", _BrokenPacker)
    values = [7, "text", {"nested": [1, (2, 3)]}, np.arange(100_000), lambda x: x + 1]
    for value in values[:-1]:
        assert str(deserialize(serialize(value))) == str(value)
    assert deserialize(serialize_plain((7, {"a": "b"}))) == (7, {"a": "b"})
    assert deserialize(dumps_function(values[-1]))(1) == 2
    assert msgpack_loads(msgpack_dumps([KeyRef("k"), {"a": 1}])) == [KeyRef("k"), {"a": 1}]
    message = PutData(id=1, data={"x": serialize(np.arange(10))})

    def batch_round_trip():  # on a thread of its own too: a packer is made per thread
        return decode_batch(encode_batch([message]))

    assert batch_round_trip() == [message]
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(batch_round_trip).result() == [message]


# -- large bytes --------------------------------------------------------------------------------


def test_large_bytes_travel_as_the_object_itself_out_of_band():
    """A pickle holding a large bytes value in band is a second copy of it for as long as it
    is sent or spilled; out of band, the value itself is the frame."""
    data = bytes(range(256)) * 8192  # 2 MiB
    payload = serialize(data)
    assert len(payload.frames) == 2 and payload.frames[1] is data
    assert len(payload.frames[0]) < 100
    assert deserialize(payload) is data  # (its frame is a bytes object already)
    received = Payload("pickle", [bytes(payload.frames[0]), bytearray(data)])  # (off the wire)
    value = deserialize(received)
    assert type(value) is bytes and value == data
    assert pickle.loads(payload.frames[0], buffers=[bytearray(data)]) == data  # plain pickle


def received(payload):
    """``payload`` as a peer receives it: its frames decoded from the wire."""
    (frames,) = FrameDecoder().feed(frames_to_bytes(payload.frames))
    return Payload(payload.serializer, frames)


def test_a_received_bytes_value_is_moved_out_of_its_frame():
    data = os.urandom(3 * 2**20 + 5)  # (a step, not a whole number of them)
    payload = received(serialize(data))
    assert type(payload.frames[1]) is mmap.mmap
    value = deserialize_received(payload)
    assert type(value) is bytes and value == data
    with pytest.raises(ValueError, match="closed"):  # read again: fails, gives no zeros
        payload.frames[1][:1]


@pytest.mark.parametrize("value", [b"x" * 1000, np.arange(300_000), {"a": b"y" * 2**21}])
def test_other_received_values_are_deserialized_as_ever(value):
    payload = received(serialize(value))
    got = deserialize_received(payload)
    assert type(got) is type(value) and repr(got) == repr(value)
    assert deserialize(payload).__repr__() == repr(value)  # (their frames stay readable)


def _resident_and_peak() -> tuple[int, int]:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return (int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                    reason="resets the process's high-water mark (Linux)")
def test_a_received_bytes_value_and_its_frame_never_take_twice_its_memory():
    """Copied in one go, the frame and the value stood side by side: a 250 MB value took
    500 MB as it arrived at a worker or a client."""
    size = 64 * 2**20
    payload = received(serialize(os.urandom(size)))
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # (the high-water mark from here on)
    before, _ = _resident_and_peak()
    value = deserialize_received(payload)
    _, peak = _resident_and_peak()
    assert len(value) == size
    assert peak - before < size // 4, f"{(peak - before) / 2**20:.0f} MiB above the frame"


def test_small_bytes_stay_in_band():
    assert serialize(b"x" * 1000).frames == [pickle.dumps(b"x" * 1000, protocol=5)]



def _by_value_classes():
    """A class with a method and one without, defined locally: pickled by value."""
    class WithMethod:
        def method(self):
            return 1

    class WithoutMethods:
        pass
    return WithMethod, WithoutMethods


def _closure(k):
    def add(x):
        return x + k
    return add


@pytest.mark.parametrize("value", [_closure(1), lambda: 1, _by_value_classes()[0]()],
                         ids=["closure", "lambda", "class-with-a-method"])
def test_a_pickle_read_without_code_refuses_functions_pickled_by_value(value):
    from dist_protocol.serialize import CodeRefused
    payload = serialize(value)
    assert deserialize(payload) is not None  # (read as usual with code allowed)
    with pytest.raises(CodeRefused, match="holds Python code"):
        deserialize(payload, code=False)


def test_a_pickle_read_without_code_reads_data_and_instances_of_plain_classes():
    array = np.arange(100_000)
    plain = _by_value_classes()[1]()
    got = [deserialize(serialize(v), code=False) for v in ({"a": [1, 2.5, b"x"]}, array,
                                                           plain, len)]
    assert got[0] == {"a": [1, 2.5, b"x"]} and (got[1] == array).all() and got[3] is len
    assert type(got[2]).__name__ == "WithoutMethods"


def test_holds_code_tells_code_from_data_without_building_either():
    from dist_protocol.serialize import holds_code

    class Reference:  # a dataset's future: pickled as a reference its reader resolves
        pass

    class WithReferences(cloudpickle.Pickler):
        def persistent_id(self, obj):
            return "key-1" if type(obj) is Reference else None

    def dumped(value):
        buffer = io.BytesIO()
        WithReferences(buffer, protocol=5).dump(value)
        return Payload("pickle", [buffer.getvalue()])

    assert holds_code(serialize(_closure(1))) and holds_code(serialize(lambda: 1))
    assert holds_code(dumped([Reference(), lambda: 1]))
    assert not holds_code(serialize({"a": np.arange(3), "f": len}))
    assert not holds_code(dumped({"future": Reference()}))
    assert not holds_code(serialize(1, ("msgpack",)))
    assert not holds_code(Payload("pickle", [b"not a pickle"]))  # (its reader says why)


def test_pickle_dumps_overriding_asks_the_override_first_for_each_object():
    from dist_protocol.serialize import pickle_dumps_overriding

    class Marker:
        pass

    def override(obj):
        return (str, ("replaced",)) if type(obj) is Marker else NotImplemented

    data = pickle_dumps_overriding({"m": Marker(), "rest": [1, (2, 3)]}, override)

    assert pickle.loads(data) == {"m": "replaced", "rest": [1, (2, 3)]}


def test_substitute_reads_inside_namedtuples_as_dask_does():
    from collections import namedtuple

    from dist_protocol.serialize import KeyRef, substitute
    point = namedtuple("point", "x y")
    value = substitute((point(KeyRef("a"), [KeyRef("a")]),), {"a": 1})
    assert value == (point(1, [1]),) and type(value[0]) is point
    assert type(substitute(point(1, 2), {})) is point
