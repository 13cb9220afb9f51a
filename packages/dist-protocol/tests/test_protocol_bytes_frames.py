"""A large ``bytes`` value's frame is received straight into the value: the frame a decoder
hands out is the ``bytes`` object a reader returns, never copied (a 1 GiB task argument was
a frame and then a copy on its worker, twice the memory and a copy's time)."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from dist_protocol.framing import FrameDecoder, frames_to_bytes
from dist_protocol.large_bytes import bytes_arguments, bytes_to_fill, received_as_bytes
from dist_protocol.serialize import (Payload, bytes_out_of_band, deserialize,
                                     deserialize_received, serialize)

pytestmark = pytest.mark.timeout(60)

LARGE = 3 * 2**20
VALUE = os.urandom(LARGE)


def received(payload: Payload, step: int | None) -> tuple[list, bytes]:
    """``payload``'s frames as a decoder hands them out, fed whole or ``step`` bytes at a
    time, with a batch after it (its bytes, to check it is read as it was sent)."""
    data = frames_to_bytes([b"messages", *payload.frames]) + frames_to_bytes([b"next"])
    decoder = FrameDecoder()
    batches = []
    step = step or len(data)
    for start in range(0, len(data), step):
        batches.extend(decoder.feed(data[start:start + step]))
    assert len(batches) == 2 and batches[1] == [b"next"]
    assert decoder.idle
    return batches[0][1:], data


@pytest.mark.parametrize("step", [None, 1 << 16, 4093])
def test_a_large_bytes_value_is_received_into_itself(step):
    frames, _ = received(serialize(VALUE), step)
    assert type(frames[1]) is bytes
    for read in (deserialize, deserialize_received):
        value = read(Payload("pickle", frames))
        assert value is frames[1]
        assert value == VALUE


@pytest.mark.parametrize("step", [None, 4093])
def test_bytes_values_inside_a_call_are_received_into_themselves(step):
    array = np.arange(LARGE // 8, dtype=np.float64)
    call = (len, (bytes_out_of_band(VALUE), 3, array, bytes_out_of_band(VALUE[:2**17])), {})
    frames, _ = received(serialize(call), step)
    assert [type(frame) is bytes for frame in frames[1:]] == [True, False, True]
    func, args, kwargs = deserialize(Payload("pickle", frames))
    assert func is len and kwargs == {}
    assert args[0] is frames[1] and args[0] == VALUE
    assert args[3] is frames[3] and args[3] == VALUE[:2**17]
    assert args[1] == 3
    # The array's frame is its own writable buffer, as before: an array a task can write to.
    assert args[2].flags.writeable and np.array_equal(args[2], array)


def test_an_array_next_to_a_bytes_value_stays_writable():
    array = np.ones(LARGE // 8)
    frames, _ = received(serialize((array, bytes_out_of_band(VALUE))), 4093)
    got_array, got_bytes = deserialize(Payload("pickle", frames))
    assert got_bytes is frames[2]
    got_array[0] = 5.0
    assert got_array.sum() == array.sum() + 4


def test_a_bytes_value_met_again_in_a_pickle_is_found_through_the_memo():
    head = serialize([bytes_out_of_band(VALUE), bytes_out_of_band(VALUE[:2**16])]).frames[0]
    assert b"h" in head or b"j" in head  # (the second call's ``bytes`` is a memo get)
    assert bytes_arguments(head) == {0, 1}


def test_buffers_not_passed_to_bytes_are_not_named():
    assert bytes_arguments(serialize(np.ones(LARGE // 8)).frames[0]) == frozenset()
    # ``bytes`` applied to something else than one buffer
    head = pickle.dumps((bytes, (pickle.PickleBuffer(bytearray(10)),), 3), protocol=5,
                        buffer_callback=lambda buffer: False)
    assert bytes_arguments(head) == frozenset()
    assert bytes_arguments(b"\x80\x05 not a pickle") == frozenset()
    assert bytes_arguments(b"") == frozenset()


def test_a_frame_after_other_payloads_is_judged_by_its_own_pickle():
    bytes_value = serialize(VALUE).frames
    array = serialize(np.ones(LARGE // 8)).frames
    assert received_as_bytes([b"messages", *array, *bytes_value[:1]])
    assert not received_as_bytes([b"messages", *bytes_value, *array[:1]])
    assert not received_as_bytes([b"messages", b"raw bytes payload"])


def test_a_value_to_fill_holds_what_was_written():
    to_fill = bytes_to_fill(1000)
    assert to_fill is not None
    value, view = to_fill
    assert value == bytes(1000) and not view.readonly and view.nbytes == 1000
    view[:] = b"x" * 1000
    assert value == b"x" * 1000


def test_the_shared_short_values_are_never_handed_out_to_fill():
    assert bytes_to_fill(0) is None and bytes_to_fill(1) is None
    assert bytes(1) == b"\x00"
