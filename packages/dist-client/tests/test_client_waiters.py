"""The one waiting mechanism (callbacks on a key's settling), the standard library's
``concurrent.futures.wait``/``as_completed`` on dist Futures, and the bridge between a
caller and the client's I/O loop (no cluster needed)."""
import asyncio
import concurrent.futures
import threading

import pytest
from dist_client.core.keeping import keep_results
from dist_client.core.client import ClientCore
from dist_client.core.keystate import KeyState
from dist_client.core.waiters import (AllDone, AllDoneOrOneFailed, LoopWaiter, ThreadWaiter,
                                     settled, settled_async, settled_or_failed_async)
from dist_client.errors import ClusterError, ExecutorClosedError
from dist_protocol.messages import KeyInMemory, Release


def finish_later(state, delay=0.01):
    timer = threading.Timer(delay, lambda: state.finish(1, "int", ["w"]))
    timer.start()
    return timer


def test_a_thread_waits_until_the_keys_settle_and_the_keys_forget_it():
    a, b = KeyState("a"), KeyState("b")
    finish_later(a)
    finish_later(b, 0.03)
    assert settled([a, b], timeout=5)
    assert not a.watchers and not b.watchers


def test_a_key_waited_for_keeps_no_object_of_its_own_for_it():
    """A client holds every key of a long map at once, and each object a key keeps is one
    more for the cyclic collector's full passes to walk: a waiter gone leaves no list
    behind, settled or timed out, nor does a callback forgotten; every key shares one lock."""
    a, b = KeyState("a"), KeyState("b")
    finish_later(a)
    assert settled([a], timeout=5)
    assert not settled([b], timeout=0.01)  # (never settles: the waiter gives up)
    assert a.watchers is None and b.watchers is None

    def callback():
        pass

    b.on_done(callback)
    b.forget(callback)
    assert b.callbacks is None
    assert a.lock is b.lock


def test_a_waiter_sees_a_key_settle_again_after_its_result_was_lost():
    a, b = KeyState("a"), KeyState("b")
    a.finish(1, "int", ["w"])
    a.recomputing()  # its worker died: pending again while it is computed anew
    finish_later(b)
    finish_later(a, 0.03)
    assert settled([a, b], timeout=5) and a.status == "finished"

    async def main():
        a.recomputing()
        finish_later(a)
        await asyncio.wait_for(settled_async([a, b]), 5)
    asyncio.run(main())
    assert not a.watchers and not b.watchers


class CountedState:
    """Stands for a KeyState: counts how often waiting looks at whether it is done (its
    status, or ``done``)."""

    reads = 0

    def __init__(self):
        self._done = False

    @property
    def status(self):
        CountedState.reads += 1
        return "finished" if self._done else "pending"

    @property
    def done(self):
        CountedState.reads += 1
        return self._done


def test_waiting_for_many_keys_looks_at_each_settled_key_a_bounded_number_of_times():
    states = [CountedState() for _ in range(5_000)]
    all_done = AllDone(states)
    CountedState.reads = 0
    checks = 0
    for start in range(0, len(states), 10):  # results arrive in batches, in submission order
        for state in states[start:start + 10]:
            state._done = True
        checks += 1
        finished = all_done()
        assert finished == (start + 10 >= len(states))
    # Each key is read while the scan passes it, and once more in the final full pass:
    # checking all keys at every batch would be about 1.25 million reads here.
    assert CountedState.reads <= 2 * len(states) + 2 * checks


def test_waiting_for_many_keys_sees_one_that_settled_and_became_pending_again():
    states = [CountedState() for _ in range(100)]
    all_done = AllDone(states)
    for state in states[:60]:
        state._done = True
    assert not all_done()
    states[5]._done = False  # its result was lost behind the scan: computed anew
    for state in states[60:]:
        state._done = True
    assert not all_done()
    states[5]._done = True
    assert all_done()


def test_waiting_for_all_or_the_first_failure_sees_one_behind_a_pending_key():
    keys = [KeyState(str(i)) for i in range(3)]
    enough = AllDoneOrOneFailed(keys)
    keys[2].finish(1, "int", ["w"])
    assert not enough()
    keys[1].fail(ValueError("task failed"))
    assert enough()  # keys[0] still pending
    keys[0].finish(1, "int", ["w"])
    assert enough()
    finished = [KeyState("a"), KeyState("b")]
    all_finished = AllDoneOrOneFailed(finished)
    finished[1].finish(1, "int", ["w"])
    assert not all_finished()
    finished[0].finish(1, "int", ["w"])
    assert all_finished()


def test_a_waiter_puts_one_callback_object_on_all_its_keys():
    """Not a bound method made per key: one object fewer a key waited for."""
    keys = [KeyState(str(i)) for i in range(3)]
    with ThreadWaiter(keys):
        assert keys[0].watchers[0] is keys[1].watchers[0] is keys[2].watchers[0]

    async def main():
        waiter = LoopWaiter(keys)
        assert keys[0].watchers[0] is keys[1].watchers[0] is keys[2].watchers[0]
        for key in keys:
            key.finish(1, "int", ["w"])
        await asyncio.wait_for(waiter.until(lambda: all(k.done for k in keys)), 5)
    asyncio.run(main())
    assert all(key.watchers is None for key in keys)


def test_waiting_on_a_loop_for_many_keys_watches_one_key_at_a_time():
    """A gather of a long map waits for every key at once: a watcher list on each key,
    kept until the last settles, was one more object a key for the cyclic collector."""
    keys = [KeyState(str(i)) for i in range(50)]
    watched_at_most = 0

    async def main():
        nonlocal watched_at_most
        waiting = asyncio.ensure_future(settled_async(keys))
        await asyncio.sleep(0)  # (one pass of the loop: the waiter starts)
        for key in keys:
            watched_at_most = max(watched_at_most, sum(1 for k in keys if k.watchers))
            key.finish(1, "int", ["w"])
            await asyncio.sleep(0)
        await asyncio.wait_for(waiting, 5)
    asyncio.run(main())
    assert watched_at_most == 1
    assert all(key.watchers is None for key in keys)


def test_waiting_on_a_loop_for_all_or_a_failure_sees_a_failure_behind_the_watched_key():
    keys = [KeyState(str(i)) for i in range(10)]

    async def main():
        waiting = asyncio.ensure_future(settled_or_failed_async(keys))
        await asyncio.sleep(0)
        assert keys[0].watchers and not keys[7].watchers
        keys[7].fail(ValueError("task failed"))
        await asyncio.wait_for(waiting, 5)  # keys[0] still pending
    asyncio.run(main())
    assert all(key.watchers is None for key in keys)
    assert KeyState.failure_watchers == []


def test_a_thread_waiter_times_out_and_leaves_no_callback_behind():
    state = KeyState("slow")
    assert not settled([state], timeout=0.01)
    assert not state.watchers


def test_a_thread_waiter_rechecks_its_condition_at_each_settling():
    states = [KeyState(f"k{i}") for i in range(3)]
    with ThreadWaiter(states) as waiter:
        for i, state in enumerate(states):
            finish_later(state, 0.01 * (i + 1))
        assert waiter.until(lambda: sum(s.done for s in states) >= 2, timeout=5)
    assert not any(state.watchers for state in states)


def test_a_coroutine_waits_on_its_own_loop_for_keys_settled_by_another_thread():
    state = KeyState("k")

    async def main():
        finish_later(state)
        await asyncio.wait_for(settled_async([state]), 5)
        return state.status
    assert asyncio.run(main()) == "finished"
    assert not state.watchers


def test_a_loop_waiter_that_gives_up_leaves_no_callback_behind():
    state = KeyState("k")

    async def main():
        waiter = LoopWaiter([state])
        with pytest.raises(asyncio.TimeoutError):  # before 3.11 not the builtin one
            await asyncio.wait_for(waiter.until(lambda: state.done), 0.01)
    asyncio.run(main())
    assert not state.watchers


def test_a_callback_on_a_settled_key_runs_at_once_and_one_that_raises_is_logged(caplog):
    state = KeyState("k")
    calls = []
    state.on_done(lambda: 1 / 0)
    state.on_done(lambda: calls.append("late"))
    state.fail(ValueError("x"))
    state.on_done(lambda: calls.append("after"))
    assert calls == ["late", "after"] and "a done callback raised" in caplog.text


def test_the_standard_wait_and_as_completed_accept_dist_futures(make_future):
    a, b = make_future("cfa"), make_future("cfb")
    finish_later(a.keystate)
    done, not_done = concurrent.futures.wait([a, b], timeout=5,
                                             return_when=concurrent.futures.FIRST_COMPLETED)
    assert done == {a} and not_done == {b}
    b.keystate.fail(KeyError("gone"), status="cancelled")
    assert set(concurrent.futures.as_completed([a, b], timeout=5)) == {a, b}
    assert b.cancelled()


def test_the_standard_wait_sees_a_key_that_settles_while_it_waits(make_future):
    futures = [make_future(f"race{i}") for i in range(20)]
    for i, future in enumerate(futures):
        finish_later(future.keystate, 0.001 * i)
    done, not_done = concurrent.futures.wait(futures, timeout=5)
    assert len(done) == 20 and not not_done


@pytest.fixture
def core():
    core = ClientCore("127.0.0.1:1")  # never connected: only its I/O loop is used
    yield core
    core.io.stop()


def test_user_code_raising_system_exit_on_the_io_loop_reaches_the_caller_not_the_loop(core):
    async def hostile():
        raise SystemExit("from a __setstate__")
    with pytest.raises(SystemExit):
        core.run(hostile(), allow_starting=True)

    async def fine():
        return 42
    assert core.run(fine(), allow_starting=True) == 42  # the loop lives on

    async def from_another_loop():
        with pytest.raises(SystemExit):
            await core.call(hostile(), allow_starting=True)
        return await core.call(fine(), allow_starting=True)
    assert asyncio.run(from_another_loop()) == 42


def test_a_call_bounded_by_the_caller_is_cancelled_on_the_io_loop(core):
    started, cancelled = threading.Event(), threading.Event()

    async def forever():
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(core.call(forever(), allow_starting=True), 0.05)
    asyncio.run(main())
    assert started.is_set() and cancelled.wait(5)
    with pytest.raises(TimeoutError, match="not done within"):
        core.run(forever(), timeout=0.05, allow_starting=True)


def test_nothing_runs_before_the_core_is_started_or_after_it_closed(core):
    async def fine():
        return 1
    with pytest.raises(ClusterError, match="connecting"):
        core.run(fine())
    core.close()
    with pytest.raises(ExecutorClosedError, match="closed"):
        core.run(fine())


class QuietCenter:
    """Stands for a connected center: what is sent to it is kept, nothing comes back."""

    features: frozenset[str] = frozenset()
    is_closed = False

    def __init__(self):
        self.sent: list = []

    def send(self, *messages) -> None:
        self.sent.extend(messages)

    def write_now(self, *messages) -> bool:
        return False

    def flush(self) -> None:
        pass


def test_a_shutdown_waits_for_a_key_whose_future_goes_while_it_is_pending(core):
    """A shutdown waits for the keys held with handles of its own: the last Future of a
    pending key dropped meanwhile (a cycle the collector frees then) releases nothing, and
    the key's news ends the wait; the shutdown's handles go with it."""
    center = core.center = QuietCenter()  # type: ignore[assignment]
    core.status = "running"
    core.hold("k")  # the Future's handle

    async def shutdown_meanwhile():
        keeping = asyncio.ensure_future(keep_results(core, 0))
        await asyncio.sleep(0)  # (its first step: it holds the keys and waits)
        core.unhold("k")  # the Future goes, its key pending
        core._on_center_messages([KeyInMemory(key="k", nbytes=8, type="int", workers=["w"])])
        await asyncio.wait_for(keeping, 5)
    core.run(shutdown_meanwhile())
    core.run(asyncio.sleep(0))  # (the release is flushed on the loop's next pass)
    assert core.state.held() == [] and center.sent == [Release(keys=["k"])]
