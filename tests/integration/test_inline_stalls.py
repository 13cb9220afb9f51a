"""A function that proved fast runs on its worker's event loop; when one of its runs blocks
there for longer than the center's heartbeat timeout, the worker must stay registered: its
results stay where they are and nothing is computed again.

Real ``dcenter``/``dworker`` processes (see conftest.py).
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 60
BLOCK_SECONDS = 6.0  # three times the center's heartbeat timeout below


def fast_until(x, blocking_x, seconds):
    """``x`` at once, except for ``blocking_x``, which blocks first; with whether it ran on
    the worker's event loop (``dworker`` runs its loop on the main thread)."""
    import threading
    import time
    if x == blocking_x:
        time.sleep(seconds)
    return x, threading.current_thread() is threading.main_thread()


@pytest.mark.cluster(n_workers=1, heartbeat_timeout=2)
def test_a_fast_function_blocking_on_the_loop_does_not_silence_its_worker(cluster, executor):
    worker = cluster.workers[0]
    earlier = executor.map(fast_until, range(20), blocking_x=-1, seconds=0)
    assert [x for x, _ in executor.gather(earlier, timeout=RESULT_TIMEOUT)] == list(range(20))
    holders = executor.who_has(earlier)
    assert set(map(tuple, holders.values())) == {(worker.address,)}
    # The function ran fast often enough to run on the loop. A run slower than that on a
    # busy machine sends it back to the pool for a while: a map runs it fast again, until
    # its blocking run has been on the loop.
    for _ in range(2):
        futures = executor.map(fast_until, range(40), blocking_x=30, seconds=BLOCK_SECONDS,
                               pure=False)
        results = executor.gather(futures, timeout=RESULT_TIMEOUT)
        assert [x for x, _ in results] == list(range(40))
        if results[30][1]:
            break
    else:
        pytest.skip("the blocking run never ran on the worker's event loop")
    center_log = cluster.center.output()
    assert "removing it" not in center_log, center_log
    assert "re-registered" not in worker.output(), worker.output()
    assert "has run on the event loop" in worker.output(), worker.output()
    assert executor.who_has(earlier) == holders
    assert [x for x, _ in executor.gather(earlier, timeout=RESULT_TIMEOUT)] == list(range(20))
