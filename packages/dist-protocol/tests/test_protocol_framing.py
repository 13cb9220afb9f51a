"""Framing: bytes <-> frames. Every parse runs three ways (whole, byte by byte, with trailing
bytes), and every rejection happens the same way and with the same code in all three."""
from __future__ import annotations

import struct

import pytest

from dist_protocol.errors import FramingError, LimitExceeded, NoRoomForFrame
from dist_protocol.framing import (DEFAULT_LIMITS, DIRECT_READ_THRESHOLD, MAPPED_THRESHOLD,
                                   UNAUTHENTICATED_LIMITS, FrameDecoder, Limits, encode_frames,
                                   STAGING_SIZE, frames_to_bytes)
from dist_protocol.testing import decode_in_chunks, decode_three_ways, rejected_three_ways

pytestmark = pytest.mark.timeout(30)

def header(*lengths: int, nframes: int | None = None) -> bytes:
    count = len(lengths) if nframes is None else nframes
    return struct.pack(f"<{len(lengths) + 1}Q", count, *lengths)


# -- the format -----------------------------------------------------------------------------


def test_one_frame_is_a_count_a_length_and_the_bytes():
    data = frames_to_bytes([b"abc"])
    assert data == b"\x01" + b"\x00" * 7 + b"\x03" + b"\x00" * 7 + b"abc"
    assert decode_three_ways(data) == [[b"abc"]]


def test_several_frames_and_empty_frames():
    frames = [b"\x90", b"", b"payload", b"", b"x" * 300]
    assert decode_three_ways(frames_to_bytes(frames)) == [frames]


def test_consecutive_batches_come_out_in_order():
    batches = [[b"first"], [b"second", b"2"], [b"", b"third"]]
    data = b"".join(frames_to_bytes(b) for b in batches)
    assert decode_three_ways(data) == batches


def test_a_frame_larger_than_the_staging_buffer_arrives_whole():
    big = bytes(range(256)) * 4000  # ~1 MB: above the direct-read threshold
    assert len(big) > DIRECT_READ_THRESHOLD
    frames = [b"head", big, b"tail"]
    assert decode_three_ways(frames_to_bytes(frames), small_chunk=4093) == [frames]


def test_an_announced_frame_costs_memory_only_as_its_bytes_arrive():
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    before = process.memory_info().rss
    decoder = FrameDecoder()  # admits 16 GiB frames
    try:
        decoder.feed(header(2**33) + b"x" * 100)
    except LimitExceeded:
        return  # the system would not reserve that much: refused, as any other limit
    assert process.memory_info().rss - before < 64 * 2**20


def test_a_mapped_frame_arrives_whole_in_pieces_of_any_size():
    big = bytes(range(256)) * (3 * MAPPED_THRESHOLD // 256 + 3)
    data = frames_to_bytes([b"m", big])
    for piece in (4093, 1_000_000, len(data)):
        decoder = FrameDecoder()
        batches = []
        for i in range(0, len(data), piece):
            batches += decoder.feed(data[i:i + piece])
        assert [[bytes(f) for f in b] for b in batches] == [[b"m", big]] and decoder.idle


def test_a_header_longer_than_the_staging_buffer_is_read():
    frames = [b"m"] + [b"f%d" % i for i in range(40_000)]  # a 320 KB header
    assert decode_three_ways(frames_to_bytes(frames), small_chunk=65_537) == [frames]


def test_encode_frames_leaves_the_frames_unjoined():
    payload = bytearray(b"big payload")
    buffers = encode_frames([b"m", payload])
    assert buffers[0] == header(1, len(payload)) and buffers[2] is payload


def test_an_empty_batch_cannot_be_encoded():
    with pytest.raises(FramingError):
        encode_frames([])


def test_max_batches_leaves_the_rest_buffered_until_asked():
    data = b"".join(frames_to_bytes([b"%d" % i]) for i in range(3))
    decoder = FrameDecoder()
    target = decoder.get_buffer()
    target[:len(data)] = data
    assert decoder.buffer_updated(len(data), max_batches=1) == [[b"0"]]
    assert decoder.parse_buffered(max_batches=1) == [[b"1"]]
    assert decoder.parse_buffered() == [[b"2"]]
    assert decoder.idle


def test_raised_limits_apply_to_the_batches_behind_the_handshake():
    handshake = frames_to_bytes([b"welcome"])
    after = frames_to_bytes([b"m", b"p" * 10_000])
    decoder = FrameDecoder(UNAUTHENTICATED_LIMITS)
    target = decoder.get_buffer()
    target[:len(handshake)] = handshake
    assert decoder.buffer_updated(len(handshake), max_batches=1) == [[b"welcome"]]
    decoder.limits = DEFAULT_LIMITS
    assert decoder.feed(after) == [[b"m", b"p" * 10_000]]


# -- malformed input --------------------------------------------------------------------------


def test_a_batch_of_zero_frames_is_malformed():
    error = rejected_three_ways(header(nframes=0))
    assert isinstance(error, FramingError) and error.code == "malformed-frame"


def test_a_truncated_batch_waits_for_more_and_is_not_an_error():
    data = frames_to_bytes([b"abcdef", b"gh"])
    for cut in range(len(data)):
        batches, decoder = decode_in_chunks(data[:cut], DEFAULT_LIMITS, 1)
        assert batches == [] and (cut == 0 or not decoder.idle)


# -- limits -----------------------------------------------------------------------------------


def test_frame_count_limit():
    limits = Limits(max_frames=3)
    assert decode_three_ways(frames_to_bytes([b"a", b"b", b"c"]), limits)
    error = rejected_three_ways(frames_to_bytes([b"a", b"b", b"c", b"d"]), limits)
    assert isinstance(error, LimitExceeded) and error.code == "limit-exceeded"
    assert "4 frames" in error.message and "3" in error.message


def test_a_frame_this_process_has_no_memory_for_is_no_room_not_the_peers_fault(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")
    monkeypatch.setattr("dist_protocol.framing.mmap.mmap", refuse)
    error = rejected_three_ways(frames_to_bytes([b"x" * MAPPED_THRESHOLD]), DEFAULT_LIMITS)
    # The peer is told what any frame past the limits tells it; those waiting on the
    # connection here can tell that this process, not the peer, ran short.
    assert isinstance(error, NoRoomForFrame) and error.code == "limit-exceeded"
    assert f"a frame of {MAPPED_THRESHOLD} bytes" in error.message
    rejected = rejected_three_ways(frames_to_bytes([b"x" * 11]), Limits(max_frame_bytes=10))
    assert not isinstance(rejected, NoRoomForFrame)


def test_frame_size_limit():
    limits = Limits(max_frame_bytes=10)
    assert decode_three_ways(frames_to_bytes([b"x" * 10]), limits)
    error = rejected_three_ways(frames_to_bytes([b"x" * 11]), limits)
    assert error.code == "limit-exceeded" and "11 bytes" in error.message


def test_batch_size_limit():
    limits = Limits(max_frame_bytes=10, max_batch_bytes=15)
    assert decode_three_ways(frames_to_bytes([b"x" * 10, b"y" * 5]), limits)
    error = rejected_three_ways(frames_to_bytes([b"x" * 10, b"y" * 6]), limits)
    assert error.code == "limit-exceeded" and "16 bytes" in error.message


def test_limits_are_enforced_from_the_header_before_any_frame_arrives():
    for limits, data in [(Limits(max_frames=2), header(nframes=2**64 - 1)),
                         (Limits(max_frame_bytes=100), header(2**63)),
                         (Limits(max_batch_bytes=100), header(60, 60))]:
        error = rejected_three_ways(data, limits)  # the header alone, no frame bytes
        assert error.code == "limit-exceeded"


def test_the_unauthenticated_limits_admit_one_small_frame():
    assert UNAUTHENTICATED_LIMITS.max_frames == 1
    assert UNAUTHENTICATED_LIMITS.max_frame_bytes == 4096
    assert decode_three_ways(frames_to_bytes([b"h" * 4096]), UNAUTHENTICATED_LIMITS)
    assert rejected_three_ways(frames_to_bytes([b"h" * 4097]),
                               UNAUTHENTICATED_LIMITS).code == "limit-exceeded"
    assert rejected_three_ways(frames_to_bytes([b"hello", b"payload"]),
                               UNAUTHENTICATED_LIMITS).code == "limit-exceeded"


def test_an_unauthenticated_decoder_stays_small():
    assert len(FrameDecoder(UNAUTHENTICATED_LIMITS)._buf) <= 8 * 2 + 4096


def test_limits_for_options_refuses_a_batch_limit_below_the_frame_limit():
    assert Limits.for_options(10, 100).max_batch_bytes == 200
    with pytest.raises(ValueError, match="below the frame limit"):
        Limits.for_options(10, 100, 50)


def test_the_staging_buffer_grows_only_while_reads_fill_it():
    """Small messages keep a small buffer (a server holds one per open connection); a stream
    that fills every read doubles it up to the limit's staging size, and decodes the same."""
    decoder = FrameDecoder(UNAUTHENTICATED_LIMITS)
    decoder.limits = DEFAULT_LIMITS  # as after a handshake
    small = frames_to_bytes([b"m" * 100])
    for _ in range(100):
        target = decoder.get_buffer()
        target[:len(small)] = small
        assert decoder.buffer_updated(len(small)) == [[b"m" * 100]]
    assert len(decoder.get_buffer()) <= 8 * 2 + 4096

    stream = frames_to_bytes([b"s" * 1000]) * 2000
    received, view = [], memoryview(stream)
    while view.nbytes:  # what a socket with plenty to read does: fill what it is given
        target = decoder.get_buffer()
        n = min(target.nbytes, view.nbytes)
        target[:n] = view[:n]
        view = view[n:]
        received.extend(decoder.buffer_updated(n))
    assert received == [[b"s" * 1000]] * 2000
    assert decoder.idle
    assert len(decoder.get_buffer()) == STAGING_SIZE
