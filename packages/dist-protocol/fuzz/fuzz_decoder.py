#!/usr/bin/env python3
"""A long fuzz run of what a receiver does with untrusted bytes, beyond the unit tests.

    python packages/dist-protocol/fuzz/fuzz_decoder.py --minutes 30
    python packages/dist-protocol/fuzz/fuzz_decoder.py --minutes 30 --engine atheris

Properties (the same as tests/test_protocol_fuzz.py, with far more examples): whatever bytes
arrive, however they are cut, the frame decoder and message validation raise nothing but
``dist_protocol.errors.ProtocolError`` with a spec error code; valid messages round-trip;
the handshakes meet any message sequence with handshake errors only.

Engines: ``hypothesis`` (the default; structured inputs: damaged real batches, message-like
maps) or ``atheris`` (coverage-guided byte mutation; ``pip install atheris``). A failure
prints the smallest input found and exits with status 1. Hypothesis keeps failing examples in
``.hypothesis/`` of the working directory, where the unit tests replay them.
"""
from __future__ import annotations

import argparse
import sys
import time


def hypothesis_targets(examples: int) -> dict:
    """Each property as a function that runs ``examples`` new examples per call."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from dist_protocol import strategies as wire
    from dist_protocol.errors import ERROR_CODES, ProtocolError
    from dist_protocol.framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, Limits
    from dist_protocol.messages import decode_batch
    from dist_protocol.testing import (check_handshakes, check_message_maps, check_round_trip,
                                       decode_untrusted)

    limits = st.sampled_from([DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS,
                              Limits(max_frames=3, max_frame_bytes=20, max_batch_bytes=30)])
    chunks = st.none() | st.integers(1, 17)

    @given(data=st.binary(max_size=2000) | wire.wire_bytes(), limits=limits, chunk=chunks)
    def untrusted_bytes(data, limits, chunk):
        outcome = decode_untrusted(data, limits, chunk)
        if isinstance(outcome, ProtocolError):
            assert outcome.code in ERROR_CODES, outcome.code
        again = decode_untrusted(data, limits, 1)
        assert type(again) is type(outcome)
        assert again == outcome if isinstance(outcome, list) else again.code == outcome.code

    @given(frames=wire.batches())
    def message_maps(frames):
        check_message_maps(frames)

    @given(frame0=st.binary(max_size=500), values=st.lists(wire.msgpack_values(), max_size=3))
    def frame_zero(frame0, values):
        import msgpack
        for candidate in (frame0, msgpack.packb(values, use_bin_type=True)):
            try:
                decode_batch([candidate, b"spare"])
            except ProtocolError:
                pass

    @given(messages=st.lists(wire.messages(), max_size=6))
    def round_trips(messages):
        check_round_trip(messages)

    @given(inputs=st.lists(wire.messages(), max_size=5), token=st.none() | st.just("tok"))
    def handshakes(inputs, token):
        check_handshakes(inputs, token)

    configured = settings(max_examples=examples, deadline=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
    return {"untrusted-bytes": configured(untrusted_bytes),
            "message-maps": configured(message_maps), "frame-zero": configured(frame_zero),
            "round-trips": configured(round_trips), "handshakes": configured(handshakes)}


def run_hypothesis(seconds: float, examples_per_round: int) -> int:
    targets = hypothesis_targets(examples_per_round)
    deadline = time.monotonic() + seconds
    rounds = 0
    while True:
        for name, run in targets.items():
            try:
                run()
            except Exception as exc:  # noqa: BLE001 -- report any failure, then stop
                print(f"FAILED {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
        rounds += 1
        left = deadline - time.monotonic()
        print(f"round {rounds}: {len(targets)} properties x {examples_per_round} examples, "
              f"{max(left, 0):.0f} s left", flush=True)
        if left <= 0:
            return 0


def run_atheris(seconds: float) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris (or use --engine hypothesis)",
              file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        import msgpack

        from dist_protocol.errors import ERROR_CODES, ProtocolError
        from dist_protocol.framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, Limits
        from dist_protocol.messages import decode_batch
        from dist_protocol.testing import decode_untrusted
    limits = [DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS,
              Limits(max_frames=3, max_frame_bytes=20, max_batch_bytes=30)]

    def test_one_input(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        chosen = limits[provider.ConsumeIntInRange(0, len(limits) - 1)]
        chunk = provider.ConsumeIntInRange(0, 17) or None
        rest = provider.ConsumeBytes(provider.remaining_bytes())
        outcome = decode_untrusted(rest, chosen, chunk)
        if isinstance(outcome, ProtocolError) and outcome.code not in ERROR_CODES:
            raise AssertionError(f"error code {outcome.code!r} is not in the spec")
        for frame0 in (rest, msgpack.packb([rest[:64]], use_bin_type=True)):
            try:
                decode_batch([frame0, b"spare"])
            except ProtocolError:
                pass

    atheris.Setup([sys.argv[0], f"-max_total_time={max(int(seconds), 1)}"], test_one_input)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis")
    parser.add_argument("--examples-per-round", type=int, default=2000,
                        help="hypothesis: examples per property between progress reports")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    if args.engine == "atheris":
        return run_atheris(seconds)
    return run_hypothesis(seconds, args.examples_per_round)


if __name__ == "__main__":
    sys.exit(main())
