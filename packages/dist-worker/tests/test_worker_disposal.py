"""A value the store lets go of is finalized on the disposal thread, never in the thread that
let it go (the worker's event loop): freed, spilled to disk, or read back and spilled again."""
from __future__ import annotations

import sys
import threading
import time
import types

import pytest
from dist_worker import spillpolicy
from dist_worker.disposal import runs_no_code_when_dropped
from dist_worker.sizeof import sizeof
from dist_worker.store import DataStore

pytestmark = pytest.mark.timeout(30)

MB = 10**6
DISPOSAL_THREAD = "dist-worker-disposal"


class Finalized:
    """Records the thread its finalizer ran on (a copy read back from disk does too)."""

    finalized_on: list[str] = []
    finalized = threading.Condition()

    def __init__(self, n_bytes: int):
        self.data = b"x" * n_bytes

    def __del__(self):
        with Finalized.finalized:
            Finalized.finalized_on.append(threading.current_thread().name)
            Finalized.finalized.notify_all()


def finalized_on(count: int) -> list[str]:
    with Finalized.finalized:
        assert Finalized.finalized.wait_for(lambda: len(Finalized.finalized_on) >= count, 10)
        return list(Finalized.finalized_on)


@pytest.fixture
def store(tmp_path):
    Finalized.finalized_on.clear()
    made = DataStore(target=100 * MB, directory=str(tmp_path))
    yield made
    made.close()


def spill_all(store: DataStore, how: str) -> None:
    if how == "target":
        store.target = 1
        store.spill_to_target()
    elif how == "evict":
        assert store.evict()
    else:  # as the memory monitor spills
        plan = spillpolicy.SpillPlan(process=10 * MB, idle_goal=0, wanted_goal=0)
        assert store.spill_by_plan(plan)


@pytest.mark.parametrize("how", ["target", "evict", "plan"])
def test_a_spilled_value_is_finalized_on_the_disposal_thread(store, how):
    store["a"] = Finalized(MB)
    spill_all(store, how)
    assert not store.in_memory("a") and "a" in store
    assert finalized_on(1) == [DISPOSAL_THREAD]


def test_a_value_read_back_and_spilled_again_or_freed_is_finalized_there_too(store):
    store["a"] = Finalized(MB)
    spill_all(store, "evict")
    store["a"]  # read back into memory (this thread drops the reference it got at once)
    assert store.in_memory("a")
    assert finalized_on(1) == [DISPOSAL_THREAD]
    spill_all(store, "evict")
    assert finalized_on(2) == [DISPOSAL_THREAD] * 2
    store["a"]
    del store["a"]
    store.hand_off_dropped()
    assert finalized_on(3) == [DISPOSAL_THREAD] * 3



def test_plain_arrays_are_dropped_at_once_and_arrays_whose_drop_runs_code_on_the_thread(
        tmp_path):
    """A dask array's chunks and sums are freed one or two a task: an array that owns its
    memory, holds no objects and has no weak reference is dropped where it is let go of,
    without waking the thread. One whose drop may run code (a weak reference's callback, the
    object whose memory it views, the objects it holds) or take long (a large one) is not."""
    import weakref

    import numpy

    from dist_worker.disposal import PLAIN_ARRAY_DROPPED_AT_ONCE

    def disposal_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == DISPOSAL_THREAD}

    before = disposal_threads()  # (one closed by an earlier test may still be ending)
    plain = DataStore(target=None, directory=str(tmp_path / "plain"))
    for i in range(3):
        plain[f"chunk-{i}"] = numpy.ones(2**18)  # 2 MiB each
        plain[f"sum-{i}"] = numpy.ones((1, 512))
        del plain[f"chunk-{i}"], plain[f"sum-{i}"]
        plain.hand_off_dropped()
    plain.close()
    assert disposal_threads() - before == set()

    Finalized.finalized_on.clear()
    store = DataStore(target=None, directory=str(tmp_path / "others"))
    watched = numpy.ones(2**18)
    weakref.finalize(watched, lambda: Finalized(0))  # its callback makes a Finalized, dropped
    values = {"watched": watched, "view": numpy.ones(2**18)[::2],
              "objects": numpy.array([Finalized(10)], dtype=object),
              "large": numpy.ones(PLAIN_ARRAY_DROPPED_AT_ONCE // 8 + 1)}
    del watched
    for key, value in values.items():
        store[key] = value
    del values, value
    for key in ["watched", "view", "objects", "large"]:
        del store[key]
    store.hand_off_dropped()
    assert finalized_on(2) == [DISPOSAL_THREAD] * 2  # the callback's and the held object's
    store.close()


class Held:
    """Dropped only once ``release`` is set: memory on its way out, for as long as a test
    likes."""

    release = threading.Event()

    def __init__(self, n_bytes: int):
        self.data = b"x" * n_bytes

    def __del__(self):
        Held.release.wait(10)


def test_the_store_says_while_values_it_let_go_of_are_still_being_dropped(store):
    """What the memory monitor asks before a restart (``Monitor._check_terminate``)."""
    Held.release.clear()
    assert not store.dropping
    store["a"] = Held(MB)
    store.target = 1
    store.spill_to_target()  # spilled, handed to the disposal thread, which waits in __del__
    assert store.on_disk("a") and store.dropping
    Held.release.set()


def test_a_library_half_imported_on_another_thread_is_taken_as_not_imported(monkeypatch, caplog,
                                                                           store):
    """A task importing numpy or pandas on a pool thread leaves the module in ``sys.modules``
    without its names until the import ends; meanwhile the loop frees and sizes values. It
    raised there (``AttributeError`` from numpy's half-made module), which cost the worker its
    connection to the center."""
    for name in ("numpy", "pandas"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))

    class Held:
        pass

    assert not runs_no_code_when_dropped(Held())
    assert runs_no_code_when_dropped(1)
    store["held"] = Held()
    store.pop("held")
    assert sizeof(Held()) > 0
    assert "cannot estimate" not in caplog.text


class BlocksUntilSet:
    """A value whose finalizer waits until ``release`` is set (one that never returns, as a
    finalizer waiting for a peer that is gone)."""

    release = threading.Event()
    entered = threading.Event()

    def __del__(self):
        BlocksUntilSet.entered.set()
        BlocksUntilSet.release.wait(20)


def test_values_freed_after_a_finalizer_that_blocks_are_dropped_on_a_new_thread(caplog):
    # One thread dropped every value a worker let go of, in order: a finalizer that blocked
    # kept every value freed after it, for the worker's life (+200 MB a round of 200 results
    # of 1 MB, in a real worker).
    from dist_worker.disposal import Disposer
    BlocksUntilSet.release.clear()
    BlocksUntilSet.entered.clear()
    Finalized.finalized_on.clear()
    now = [100.0]
    disposer = Disposer(stuck_after=10.0, clock=lambda: now[0])
    try:
        disposer.drop([BlocksUntilSet()])
        assert BlocksUntilSet.entered.wait(10)
        disposer.drop([Finalized(10)])  # behind the stuck one, not yet taken for stuck
        assert disposer.dropping and disposer.abandoned == 0
        now[0] += 11.0
        disposer.drop([Finalized(10)])
        assert finalized_on(2) == [DISPOSAL_THREAD, DISPOSAL_THREAD]
        assert disposer.abandoned == 1
        assert "left to it" in caplog.text
        deadline = time.monotonic() + 10  # (its counter is bumped just after the drop)
        while disposer.dropping and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert not disposer.dropping
    finally:
        BlocksUntilSet.release.set()
        disposer.close()
