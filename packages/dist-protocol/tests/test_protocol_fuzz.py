"""Hypothesis: whatever bytes or values arrive, the receiver raises only the protocol's own
errors; whatever a sender encodes comes out the same. A longer run of the same properties:
``python packages/dist-protocol/fuzz/fuzz_decoder.py --minutes N``."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dist_protocol import strategies as wire
from dist_protocol.errors import ERROR_CODES, ProtocolError
from dist_protocol.framing import (DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, FrameDecoder, Limits,
                                   frames_to_bytes)
from dist_protocol.messages import decode_batch
from dist_protocol.testing import (check_handshakes, check_message_maps, check_round_trip,
                                   comm_pair, decode_untrusted)

pytestmark = pytest.mark.timeout(120)

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = st.sampled_from([DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS,
                          Limits(max_frames=3, max_frame_bytes=20, max_batch_bytes=30)])
CHUNKS = st.none() | st.integers(1, 17)


@FAST
@given(data=st.binary(max_size=300), limits=LIMITS, chunk=CHUNKS)
def test_arbitrary_bytes_raise_only_protocol_errors(data, limits, chunk):
    outcome = decode_untrusted(data, limits, chunk)
    if isinstance(outcome, ProtocolError):
        assert outcome.code in ERROR_CODES


@FAST
@given(data=wire.wire_bytes(), limits=LIMITS, chunk=CHUNKS)
def test_damaged_batches_raise_only_protocol_errors(data, limits, chunk):
    outcome = decode_untrusted(data, limits, chunk)
    assert isinstance(outcome, (list, ProtocolError))


@FAST
@given(data=wire.wire_bytes(), chunk=st.integers(1, 17))
def test_how_the_bytes_are_cut_changes_nothing(data, chunk):
    whole, pieces = decode_untrusted(data), decode_untrusted(data, chunk=chunk)
    if isinstance(whole, ProtocolError):
        assert isinstance(pieces, ProtocolError) and pieces.code == whole.code
    else:
        assert pieces == whole


@FAST
@given(batches=st.lists(st.lists(st.binary(max_size=70), min_size=1, max_size=5), max_size=4),
       chunk=st.integers(1, 50))
def test_frames_come_out_as_they_went_in(batches, chunk):
    data = b"".join(frames_to_bytes(b) for b in batches)
    decoder = FrameDecoder()
    out = []
    for i in range(0, len(data), chunk):
        out.extend(decoder.feed(data[i:i + chunk]))
    assert [[bytes(f) for f in b] for b in out] == batches and decoder.idle


@FAST
@given(frames=wire.batches())
def test_message_like_maps_are_validated_or_refused(frames):
    check_message_maps(frames)


@FAST
@given(frame0=st.binary(max_size=200), rest=st.lists(st.binary(max_size=8), max_size=3))
def test_arbitrary_frame_0_raises_only_protocol_errors(frame0, rest):
    try:
        decode_batch([frame0, *rest])
    except ProtocolError as exc:
        assert exc.code in ("invalid-message", "unknown-op")


@FAST
@given(values=st.lists(wire.msgpack_values(), max_size=3))
def test_arbitrary_msgpack_lists_raise_only_protocol_errors(values):
    try:
        decode_batch([msgpack.packb(values, use_bin_type=True)])
    except ProtocolError:
        pass


@FAST
@given(messages=st.lists(wire.messages(), max_size=5))
def test_every_valid_message_round_trips(messages):
    check_round_trip(messages)


@FAST
@given(inputs=st.lists(wire.messages(), max_size=4), token=st.none() | st.just("tok"))
def test_the_handshakes_meet_any_message_sequence_with_handshake_errors(inputs, token):
    check_handshakes(inputs, token)


@settings(max_examples=40, deadline=None)
@given(data=wire.wire_bytes(), chunk=st.integers(1, 9))
def test_a_comm_survives_any_bytes_by_closing_that_connection(data, chunk):
    """Garbage after the handshake ends in an ``error`` message and a close, never a crash."""
    async def main():
        initiator, acceptor = await comm_pair(chunk_size=chunk)
        received = []
        acceptor.set_handler(received.extend)
        initiator.transport.write(data)
        await asyncio.sleep(0)
        for _ in range(len(data) + 10):
            await asyncio.sleep(0)
        initiator.close()
        await asyncio.wait_for(acceptor.closed, 5)
        expected = decode_untrusted(data)
        if isinstance(expected, ProtocolError):
            assert acceptor.abort_error is not None
            assert acceptor.abort_error.code == expected.code
        else:
            assert received == expected
    asyncio.run(main())


def test_the_long_fuzz_script_runs(tmp_path):
    """``fuzz/fuzz_decoder.py`` is outside the default run; this only checks it works."""
    script = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_decoder.py"
    result = subprocess.run([sys.executable, str(script), "--minutes", "0.02",
                             "--examples-per-round", "20"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    assert "round 1:" in result.stdout
