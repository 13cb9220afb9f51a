"""AsyncExecutor: every call awaited on the caller's event loop, on real processes.

Its coroutines await the client's operations on the I/O loop directly: no thread pool stands
between the caller's loop and the client, and each operation behaves as ``Executor``'s does.
"""
import asyncio
import threading
from concurrent.futures import CancelledError

import pytest
from dist_client import AsyncExecutor, Executor, Future

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 60


def inc(x):
    return x + 1


def sleep_then(x):
    import time
    time.sleep(x)
    return x


def fail(x):
    raise ValueError(f"bad {x}")


def wait_for_file(path):
    import os
    import time
    while not os.path.exists(path):
        time.sleep(0.01)
    return path


def test_awaiting_starts_no_thread(module_cluster):
    """Besides the client's own I/O thread, no thread runs for the caller's awaits."""
    async def main():
        before = set(threading.enumerate())
        seen: set[threading.Thread] = set()
        done = asyncio.Event()

        async def sample():
            while not done.is_set():
                seen.update(threading.enumerate())
                await asyncio.sleep(0.001)

        sampler = asyncio.ensure_future(sample())
        async with AsyncExecutor(module_cluster.address) as ae:
            future = ae.submit(sleep_then, 0.2, pure=False)
            values = await ae.gather([future, ae.submit(inc, 1)], timeout=TIMEOUT)
            assert await future == 0.2
            await ae.who_has([future])
            await ae.ncores()
            await ae.scatter([1, 2])
        done.set()
        await sampler
        return values, seen - before
    values, new_threads = asyncio.run(main())
    assert values == [0.2, 2]
    assert [t.name for t in new_threads] == ["dist-client-io"]


def test_every_cluster_call_awaited(module_cluster):
    async def main():
        async with Executor(module_cluster.address,
                            asynchronous=True) as ae:
            assert "AsyncExecutor" in repr(ae)
            futures = ae.map(inc, range(4))
            await ae.wait_done(futures)
            assert all(f.executor is ae for f in futures)
            who_has = await ae.who_has(futures)
            assert set(who_has) == {f.key for f in futures}
            has_what = await ae.has_what()
            assert sorted(k for keys in has_what.values() for k in keys) \
                == sorted(f.key for f in futures)
            await ae.replicate(futures, n=2)
            assert all(len(w) == 2 for w in (await ae.who_has(futures)).values())
            ran = await ae.run(inc, 1)
            assert set(ran.values()) == {2} and set(ran) == set(await ae.ncores())
            versions = await ae.versions()
            assert set(versions) == {"client", "center", "workers"}
            assert await ae.story(futures[0])
            [scattered] = await ae.scatter([10])
            assert await ae.submit(inc, scattered) == 11
            return await ae.gather(futures)
    assert asyncio.run(main()) == [1, 2, 3, 4]


def test_async_for_over_as_completed(module_cluster, tmp_path):
    """``async for`` over ``as_completed``, as with dask's asynchronous client: the loop
    stays free while it waits (a ticker runs meanwhile), results come with their futures."""
    from dist_client import as_completed

    async def main():
        async with Executor(module_cluster.address, asynchronous=True) as ae:
            ticks = 0
            go = tmp_path / "go"
            slow = ae.submit(wait_for_file, str(go), pure=False)
            fast = ae.submit(inc, 1, pure=False)

            async def ticker():
                # slow ends only once the loop ticked five times while the test waited in
                # as_completed, and after fast: its order holds on a loaded machine too.
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1
                    if ticks >= 5 and fast.done() and not go.exists():
                        go.touch()
            ticking = asyncio.create_task(ticker())
            order = [future async for future in as_completed([slow, fast])]
            ticking.cancel()
            assert [f.key for f in order] == [fast.key, slow.key] and ticks >= 5
            pairs = {}
            async for future, value in as_completed(
                    [ae.submit(inc, 5, pure=False), ae.submit(fail, 2, pure=False)],
                    with_results=True, raise_errors=False):
                pairs[future.key] = value if isinstance(value, int) else value[1]
            assert sorted(map(repr, pairs.values())) == ["6", "ValueError('bad 2')"]
            with pytest.raises(TimeoutError):
                async for _ in as_completed([ae.submit(sleep_then, 0.5, pure=False)],
                                            timeout=0.05):
                    pass
    asyncio.run(main())


def test_errors_cancellation_and_close(module_cluster):
    async def main():
        ae = await AsyncExecutor(module_cluster.address)
        bad = ae.submit(fail, 1)
        with pytest.raises(ValueError, match="bad 1"):
            await bad
        good = ae.submit(inc, 5)
        assert await ae.gather([good, bad], errors="skip") == [6]
        with pytest.raises(ValueError, match="errors must be"):
            await ae.gather([good], errors="ignore")
        slow = ae.submit(sleep_then, 30, pure=False)
        await ae.cancel([slow])
        with pytest.raises(CancelledError):
            await slow
        # The caller bounds an await: the wait stops, the future goes on.
        longer = ae.submit(sleep_then, 0.5, pure=False)
        with pytest.raises(asyncio.TimeoutError):  # before 3.11 not the builtin one
            await asyncio.wait_for(longer, 0.01)
        assert await longer == 0.5
        await ae.close()
        assert ae.status == "closed"
        assert await ae.gather([good]) == [6]  # a result already here stays readable
        with pytest.raises(RuntimeError, match="closed"):
            ae.submit(inc, 1)
        with pytest.raises(RuntimeError, match="closed"):
            await ae.ncores()
        return good
    assert isinstance(asyncio.run(main()), Future)
