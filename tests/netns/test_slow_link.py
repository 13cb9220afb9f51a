"""One worker behind a slow link: 50 ms added latency and a 20 Mbit/s cap both ways.

Nothing may time out just because transfers take seconds, the center must not take the slow
worker's heartbeats for silence, and tasks still go where their big input already is rather
than pulling it across the slow link.
"""
from __future__ import annotations

import pytest

from .cluster import start_cluster

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

MB = 1_000_000
SIZE = 10 * MB  # 4 s across 20 Mbit/s: longer than any reasonable per-message timeout
RATE_BYTES_PER_S = 20_000_000 / 8


def test_slow_link_no_spurious_timeouts_and_placement_keeps_big_input_in_place(
        latency_supported, network):
    cluster = start_cluster(network, delays={"worker-c": 50})
    b, c = cluster.workers["worker-b"], cluster.workers["worker-c"]
    c.host.limit_bandwidth("20mbit")

    result = cluster.run_client("slow_link", timeout=150, fast="worker-b", slow="worker-c",
                                size=SIZE)

    assert "error" not in result, result
    # Every task on the big input ran on the slow worker that holds it.
    assert result["placed_on"] == [c.host.address] * 4
    assert result["placed_concurrently"] == [c.host.address] * 4
    # Moving it anyway works, and took the time the cap says (so the cap was real).
    assert result["moved"] == [SIZE, b.host.address]
    assert result["timings"]["move to fast"] > 0.8 * SIZE / RATE_BYTES_PER_S
    assert result["timings"]["scatter to slow"] > 0.8 * SIZE / RATE_BYTES_PER_S
    assert result["squares"] == [x * x for x in range(20)]
    assert result["squares_ran_on"] == sorted([b.host.address, c.host.address])
    assert result["fetched"] == SIZE // 2
    assert result["workers"] == sorted([b.address, c.address])
    assert cluster.removals() == []
    print("timings (s):", result["timings"])
