"""dist_protocol.timeouts: one TimeoutError for every way of catching one, and a wait_for that
behaves as ``asyncio.timeout`` on every supported Python."""
from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import pickle

import pytest
from dist_protocol import comm
from dist_protocol.timeouts import TimeoutError, wait_for


@pytest.mark.parametrize("caught_as", [builtins.TimeoutError, asyncio.TimeoutError,
                                       concurrent.futures.TimeoutError, OSError])
def test_each_way_of_catching_a_timeout_catches_ours(caught_as):
    with pytest.raises(caught_as, match="late"):
        raise TimeoutError("late")


def test_our_timeout_pickles_as_itself():
    error = pickle.loads(pickle.dumps(TimeoutError("late")))
    assert type(error) is TimeoutError and str(error) == "late"


def test_wait_for_returns_the_result_in_time(run):
    async def main():
        async def answer():
            await asyncio.sleep(0)
            return 42
        return await wait_for(answer(), 5), await wait_for(answer(), None)
    assert run(main()) == (42, 42)


def test_a_timeout_cancels_the_awaitable_and_its_cleanup_runs_first(run):
    cleaned_up = []

    async def main():
        async def forever():
            try:
                await asyncio.Event().wait()
            finally:
                cleaned_up.append(True)
        with pytest.raises(asyncio.TimeoutError, match="no answer") as caught:
            await wait_for(forever(), 0.01, "no answer")
        assert cleaned_up == [True]
        assert isinstance(caught.value, builtins.TimeoutError)
        assert isinstance(caught.value, concurrent.futures.TimeoutError)
    run(main())


def test_the_awaitables_own_timeout_error_goes_on_as_it_is(run):
    async def main():
        async def fails():
            raise builtins.TimeoutError("the task's own")
        with pytest.raises(builtins.TimeoutError, match="the task's own"):
            await wait_for(fails(), 5, "not this one")
    run(main())


def test_an_outer_cancellation_cancels_the_awaitable_and_goes_on(run):
    cleaned_up = []

    async def main():
        started = asyncio.Event()

        async def forever():
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                cleaned_up.append(True)
        task = asyncio.ensure_future(wait_for(forever(), 30))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned_up == [True]
    run(main())


def test_an_outer_cancellation_is_not_lost_when_the_awaitable_just_finished(run):
    """Python 3.10's asyncio.wait_for returned the result here, and the cancellation was
    gone."""
    async def main():
        loop = asyncio.get_running_loop()
        inner = loop.create_future()
        task = asyncio.ensure_future(wait_for(inner, 30))
        await asyncio.sleep(0)  # the task waits for inner now
        inner.set_result("done")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run(main())


def test_comm_run_ends_what_main_left_running():
    cleaned_up = []

    async def background():
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)

    async def main():
        asyncio.ensure_future(background())
        await asyncio.sleep(0)
        return "main's result"
    assert comm.run(main()) == "main's result"
    assert cleaned_up == [True]
