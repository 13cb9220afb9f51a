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


def fast_until_it_raises(x, raising_x, seconds):
    """``fast_until``, but ``raising_x`` blocks and then raises (as a call to a service that
    times out), saying whether it ran on the worker's event loop."""
    import threading
    import time
    on_loop = threading.current_thread() is threading.main_thread()
    if x == raising_x:
        time.sleep(seconds)
        raise TimeoutError(f"on the loop: {on_loop}")
    return x, on_loop


@pytest.mark.cluster(n_workers=1)
def test_a_fast_function_that_blocks_then_raises_on_the_loop_is_barred_from_it(executor):
    """Runs that raised were not timed: such a function stayed on the loop, to stall it again
    at each of its slow runs, where one that returned is barred after a few."""
    from dist_worker.inline_policy import InlinePolicy

    stalls_on_loop = 0
    for _ in range(4 * InlinePolicy.STRIKES):
        futures = executor.map(fast_until_it_raises, range(40), raising_x=30, seconds=0.05,
                               pure=False)
        error = futures[30].exception(timeout=RESULT_TIMEOUT)
        assert isinstance(error, TimeoutError)
        stalls_on_loop += str(error) == "on the loop: True"
        executor.gather(futures[:30] + futures[31:], timeout=RESULT_TIMEOUT)
        if stalls_on_loop == InlinePolicy.STRIKES:
            break
    else:
        pytest.skip("the raising run was not on the worker's event loop often enough")
    later = executor.map(fast_until_it_raises, range(40), raising_x=-1, seconds=0, pure=False)
    assert not any(on_loop for _, on_loop in executor.gather(later, timeout=RESULT_TIMEOUT))
