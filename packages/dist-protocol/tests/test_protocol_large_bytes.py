"""A large ``bytes`` value made out of its frame (a task's argument, a scattered or fetched
value) lets other threads run while it is copied: the worker's event loop, which sends its
heartbeats, waited 9.6 s for one 1 GiB argument on a loaded machine, and the center removed
the worker as silent."""
from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
from dist_protocol.framing import frame_buffer
from dist_protocol.large_bytes import STEPPED
from dist_protocol.serialize import (Payload, bytes_out_of_band, deserialize,
                                     deserialize_received, serialize)

pytestmark = pytest.mark.timeout(60)

SIZE = 256 * 2**20  # long enough to copy that a waiting thread asks for its turn (5 ms)


def arrived(payload: Payload) -> Payload:
    """``payload`` as a receiver has it: each large frame in a buffer of its own."""
    frames = []
    for frame in payload.frames:
        if len(memoryview(frame).cast("B")) >= 2**20:
            buffer = frame_buffer(len(memoryview(frame).cast("B")))
            buffer[:] = memoryview(frame).cast("B")
            frames.append(buffer)
        else:
            frames.append(frame)
    return Payload(payload.serializer, frames)


def copied_while_another_thread_ran(payload: Payload, read) -> bool:
    """Whether a thread waiting for the interpreter ran while ``read(payload)`` made its
    value: it flips the frame's last byte, which the value then holds."""
    frame = payload.frames[-1]
    began = threading.Event()

    def flip() -> None:
        began.wait()
        frame[-1] ^= 0xFF

    other = threading.Thread(target=flip)
    other.start()
    began.set()
    value = read(payload)
    other.join()
    data = value[0][0] if isinstance(value, tuple) else value
    return data[-1] != 0


def test_a_task_argument_of_large_bytes_is_copied_while_other_threads_run():
    args = ((bytes_out_of_band(bytes(SIZE)),), {})
    frames = []
    head = pickle.dumps(args, protocol=5, buffer_callback=frames.append)
    payload = arrived(Payload("pickle", [head, *(f.raw() for f in frames)]))
    assert copied_while_another_thread_ran(payload, deserialize)


def test_a_large_bytes_value_moved_out_of_its_frame_comes_back_whole():
    data = bytes(range(256)) * (STEPPED // 256 + 3)
    assert deserialize_received(arrived(serialize(data))) == data


def test_a_large_bytes_payload_is_copied_while_other_threads_run():
    payload = arrived(Payload("bytes", [bytes(SIZE)]))
    assert copied_while_another_thread_ran(payload, deserialize)


def test_large_values_come_back_whole():
    data = np.random.default_rng(0).integers(0, 256, STEPPED + 12345, dtype=np.uint8)
    raw = data.tobytes()
    for value in [raw, (raw, b"small", bytes, [raw]), {"a": data, "b": raw}]:
        back = deserialize(arrived(serialize(value)))
        if isinstance(value, dict):
            assert back["b"] == raw and type(back["b"]) is bytes
            assert np.array_equal(back["a"], data) and back["a"].flags.writeable
        else:
            assert back == value
    # ``bytes`` the class, as a value beside a large buffer, stays the class
    assert deserialize(arrived(serialize((bytes, raw))))[0] is bytes


def huge_pages_under(address: int) -> int:
    """The kB of huge pages in this process's mapping that holds ``address``."""
    with open("/proc/self/smaps") as smaps:
        inside = False
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and head == "AnonHugePages:":
                return int(line.split()[1])
    return 0


def test_a_large_bytes_value_lies_in_huge_pages_which_are_freed_at_once():
    # A bytes object's memory is given back in one munmap under the interpreter: 1 GiB in
    # 4 KiB pages took about a second on a loaded machine, in huge pages a few milliseconds.
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            if "[never]" in f.read():
                pytest.skip("transparent huge pages are off on this machine")
    except OSError:
        pytest.skip("no transparent huge pages here")
    import ctypes
    payload = arrived(Payload("bytes", [bytes(64 * 2**20)]))
    value = deserialize(payload)
    address = ctypes.cast(ctypes.c_char_p(value), ctypes.c_void_p).value
    assert address is not None and huge_pages_under(address + len(value) // 2) > 0
