"""Peers of different releases on one cluster: optional protocol features are only used where
both sides announced them."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def test_a_new_client_scatters_to_a_center_that_announces_no_features(processes):
    # DIST_PROTOCOL_FEATURES="" makes the center announce what a release before features did:
    # nothing. It rejects a scatter-done, as such a release would (there: unknown-op), so a
    # client that sent one anyway would lose its connection and everything after would fail.
    center = processes.start_center(env={"DIST_PROTOCOL_FEATURES": ""})
    processes.start_worker(center.address)
    processes.start_worker(center.address)
    e = processes.executor(center.address)
    e.wait_for_workers(2, timeout=RESULT_TIMEOUT)
    futures = e.scatter(list(range(10)))
    assert all(f.status == "finished" for f in futures)
    # where the data went reached the center before scatter returned (here: via who-has)
    assert set(e.who_has(futures)) == {f.key for f in futures}
    assert all(e.who_has(futures).values())
    assert e.submit(sum, futures).result(timeout=RESULT_TIMEOUT) == 45
    assert e.gather(futures, timeout=RESULT_TIMEOUT) == list(range(10))
    assert "closing connection" not in center.output()


def test_the_same_client_uses_scatter_done_where_the_center_announces_it(processes):
    center = processes.start_center()
    processes.start_worker(center.address)
    e = processes.executor(center.address)
    futures = e.scatter([1, 2, 3])
    assert e.submit(sum, futures).result(timeout=RESULT_TIMEOUT) == 6
    assert all(e.who_has(futures).values())
