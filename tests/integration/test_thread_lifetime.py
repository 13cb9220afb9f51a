"""No thread of an Executor outlives its close, not even as an ended ``Thread`` object kept
until the collector runs: Python 3.10's ``test.support`` thread check compares the set of
``Thread`` objects alive before and after a test, and a closed client waiting in a reference
cycle kept its I/O thread's object in that set until a full collection."""
from __future__ import annotations

import gc
import threading

import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(60)


def _thread_objects() -> set[threading.Thread]:
    return set(threading._dangling)  # type: ignore[attr-defined]  # what test.support reads


def test_no_thread_object_of_a_closed_executor_waits_for_the_collector(module_cluster):
    before = _thread_objects()
    gc.disable()  # only reference counting frees what is left: no collection hides it
    try:
        executor = Executor(module_cluster.address)
        assert executor.submit(sum, [1, 2]).result(timeout=30) == 3
        executor.close()
        left = {thread.name for thread in _thread_objects() - before}
    finally:
        gc.enable()
    assert not left, f"Thread objects left after close: {sorted(left)}"
