"""The original project's ``test_executor.py`` (dask/distributed, December 2015, the tests of
its first ``Executor``) ported to today's API, against real processes.

Each test keeps its original name and scenario. What the original read from the scheduler's
internals (``e.scheduler.who_has``, ``e.refcount``, a worker's ``data``) is read here through
the public API (``who_has``, ``has_what``, ``story``); the coroutine variants (``e._submit``
under tornado) are the blocking calls, and ``AsyncExecutor`` where a test is about asyncio.
Scenarios that name a piece the project does not have (a separate ``Scheduler`` object between
client and center, tornado's ``IOStream``) are noted where they stood.
"""
from __future__ import annotations

import gc
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import CancelledError
from operator import add
from random import randint

import pytest
from dist_client import Executor, Future, as_completed, default_executor, wait

pytestmark = pytest.mark.timeout(120)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2}
T = 60  # seconds any single result may take on a loaded machine


def inc(x):
    return x + 1


def dec(x):
    return x - 1


def div(x, y):
    return x / y


def throws(x):
    raise RuntimeError("hello!")


def slowinc(x):
    time.sleep(0.02)
    return x + 1


def identity(x):
    return x


@pytest.fixture(scope="module")
def e(module_cluster):
    with Executor(module_cluster.address) as executor:
        yield executor


def _tuple(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _forgotten_at_center(executor: Executor, key: str) -> bool:
    entries = [entry for entry in executor.story(key) if not entry["worker"]]
    return bool(entries) and entries[-1]["finish"] in ("released", "forgotten")


def test_submit(module_cluster):
    e = Executor(_tuple(module_cluster.address))
    x = e.submit(inc, 10)
    assert isinstance(x, Future)
    assert x.executor is e
    assert x.result(T) == 11
    assert x.done()
    y = e.submit(inc, 20)
    z = e.submit(add, x, y)
    assert z.result(T) == 11 + 21
    assert e.who_has([z])[z.key]
    e.shutdown()


def test_map(e):
    L1 = e.map(inc, range(5))
    assert len(L1) == 5
    assert len({x.key for x in L1}) == 5
    assert all(isinstance(x, Future) for x in L1)
    assert L1[0].result(T) == inc(0)

    L2 = e.map(inc, L1)
    assert L2[1].result(T) == inc(inc(1))
    total = e.submit(sum, L2)
    assert total.result(T) == sum(map(inc, map(inc, range(5))))

    L3 = e.map(add, L1, L2)
    assert L3[1].result(T) == inc(1) + inc(inc(1))
    L4 = e.map(add, range(3), range(4))
    assert e.gather(L4) == list(map(add, range(3), range(4)))

    def f(x, y=10):
        return x + y

    assert e.gather(e.map(f, range(5), y=5)) == list(range(5, 10))
    y = e.submit(f, 10)
    assert e.gather(e.map(f, range(5), y=y)) == list(range(20, 25))


def test_future(e):
    x = e.submit(inc, 10)
    assert str(x.key) in repr(x)
    assert str(x.status) in repr(x)


def test_Future_exception(e):
    x = e.submit(div, 1, 0)
    assert isinstance(x.exception(T), ZeroDivisionError)
    x = e.submit(div, 1, 1)
    assert x.exception(T) is None


def test_Future_exception_sync(module_cluster):
    with Executor(_tuple(module_cluster.address)) as e:
        x = e.submit(div, 1, 0)
        assert isinstance(x.exception(T), ZeroDivisionError)
        x = e.submit(div, 1, 1)
        assert x.exception(T) is None


def test_map_naming(e):
    L1 = e.map(inc, range(5))
    L2 = e.map(inc, range(5))
    assert [x.key for x in L1] == [x.key for x in L2]
    L3 = e.map(inc, [1, 1, 1, 1])
    assert len({x.key for x in L3}) == 1
    L4 = e.map(inc, [1, 1, 1, 1], pure=False)
    assert len({x.key for x in L4}) == 4


def test_submit_naming(e):
    a = e.submit(inc, 1)
    b = e.submit(inc, 1)
    assert a.key == b.key and a.keystate is b.keystate  # one task, one state
    c = e.submit(inc, 1, pure=False)
    assert c.key != a.key


def test_exceptions(e):
    assert e.submit(div, 1, 2).result(T) == 1 / 2
    with pytest.raises(ZeroDivisionError):
        e.submit(div, 1, 0).result(T)
    assert e.submit(div, 10, 2).result(T) == 10 / 2  # continues to operate


def test_gc(e, wait_until):
    x = e.submit(inc, 10, pure=False)
    assert x.result(T) == 11
    assert e.who_has([x])[x.key]
    key = x.key
    del x
    gc.collect()
    wait_until(lambda: _forgotten_at_center(e, key), what="the key released")


def test_thread(module_cluster):
    with Executor(_tuple(module_cluster.address)) as e:
        assert e.submit(inc, 1).result(T) == 2


def test_sync_exceptions(module_cluster):
    e = Executor(_tuple(module_cluster.address))
    assert e.submit(div, 10, 2).result(T) == 5
    with pytest.raises(ZeroDivisionError):
        e.submit(div, 10, 0).result(T)
    assert e.submit(div, 10, 5).result(T) == 2
    e.shutdown()


def test_stress_1(e):
    n = 2**6
    seq = e.map(inc, range(n))
    while len(seq) > 1:
        seq = [e.submit(add, seq[i], seq[i + 1]) for i in range(0, len(seq), 2)]
    assert seq[0].result(T) == sum(map(inc, range(n)))


def test_gather(e):
    x = e.submit(inc, 10)
    y = e.submit(inc, x)
    assert e.gather(x) == 11
    assert e.gather([x]) == [11]
    assert e.gather({"x": x, "y": [y]}) == {"x": 11, "y": [12]}


def test_gather_sync(module_cluster):
    with Executor(_tuple(module_cluster.address)) as e:
        assert e.gather(e.submit(inc, 1)) == 2


def test_get(e):
    assert e.get({"x": (inc, 1)}, "x") == 2
    # dask's get contract today: a list of keys gives a tuple (the original gave a list).
    assert e.get({"x": (inc, 1)}, ["x"]) == (2,)
    assert e.get({}, []) == ()


def test_get_sync(module_cluster):
    with Executor(_tuple(module_cluster.address)) as e:
        assert e.get({"x": (inc, 1)}, "x") == 2


def test_submit_errors(e):
    with pytest.raises(TypeError):
        e.submit(1, 2, 3)
    with pytest.raises(TypeError):
        e.map([1, 2, 3])


def test_wait(e):
    a = e.submit(inc, 1)
    b = e.submit(inc, 1)
    c = e.submit(inc, 2)
    done, not_done = wait([a, b, c], timeout=T)
    assert done == {a, b, c}
    assert not_done == set()
    assert a.status == b.status == "finished"


def test_as_completed(e):
    x = e.submit(inc, 1)
    y = e.submit(inc, 2)
    z = e.submit(inc, 1)
    seq = as_completed([x, y, z])
    assert isinstance(seq, Iterator)
    assert set(seq) == {x, y, z}


def test_wait_sync(e):
    x = e.submit(inc, 1)
    y = e.submit(inc, 2)
    done, not_done = wait([x, y], timeout=T)
    assert done == {x, y}
    assert not_done == set()
    assert x.status == y.status == "finished"


def test_garbage_collection(e, wait_until):
    a = e.submit(inc, 1, key="gc-a")
    b = e.submit(inc, 1, key="gc-a")
    assert a.keystate is b.keystate
    del a  # b still holds the key
    c = e.submit(inc, b)
    del b
    gc.collect()
    assert c.result(T) == 3
    wait_until(lambda: _forgotten_at_center(e, "gc-a"), what="gc-a released")


def test_garbage_collection_with_scatter(e, wait_until):
    [a] = e.scatter([1])
    assert a.status == "finished"
    key = a.key
    del a
    gc.collect()
    wait_until(lambda: _forgotten_at_center(e, key), what="the scattered key released")


def test_recompute_released_key(e, wait_until):
    x = e.submit(inc, 100)
    result1 = x.result(T)
    xkey = x.key
    del x
    gc.collect()
    wait_until(lambda: _forgotten_at_center(e, xkey), what="the key released")
    x = e.submit(inc, 100)
    assert x.key == xkey
    assert x.result(T) == result1


def test_stress_gc(e):
    n = 100
    x = e.submit(slowinc, 1)
    for _ in range(n):
        x = e.submit(slowinc, x)
    assert x.result(T) == n + 2


def test_long_tasks_dont_trigger_timeout(e):
    assert e.submit(time.sleep, 3, pure=False).result(T) is None


def test_missing_data_heals(cluster):
    """The original deleted y's value from the worker behind the scheduler's back; here the
    worker holding it dies, and a task needing it still gets it (recomputed)."""
    e = cluster.executor()
    x = e.submit(inc, 1)
    y = e.submit(inc, x)
    z = e.submit(inc, y)
    wait([x, y, z], timeout=T)
    holder = e.who_has([y])[y.key][0]
    next(w for w in cluster.workers if w.address == holder).kill()
    cluster.add_worker()
    w = e.submit(add, y, z)
    assert w.result(T) == 3 + 4


def test_gather_robust_to_missing_data(cluster):
    e = cluster.executor()
    x, y, z = e.map(inc, range(3))
    wait([x, y, z], timeout=T)
    cluster.workers[0].kill()
    cluster.add_worker()
    assert e.gather([x, y, z], timeout=T) == [1, 2, 3]


def test_gather_robust_to_nested_missing_data(cluster):
    e = cluster.executor()
    w = e.submit(inc, 1)
    x = e.submit(inc, w)
    y = e.submit(inc, x)
    z = e.submit(inc, y)
    wait([z], timeout=T)
    cluster.workers[0].kill()
    cluster.add_worker()
    assert e.gather([z], timeout=T) == [inc(inc(inc(inc(1))))]


def test_tokenize_on_futures(e):
    from dask.base import tokenize
    x = e.submit(inc, 1)
    y = e.submit(inc, 1)
    tok = tokenize(x)
    assert tokenize(x) == tokenize(x)
    assert tokenize(x) == tokenize(y)
    x.result(T)
    assert tok == tokenize(y)  # the same once finished


def test_restrictions_submit(cluster):
    e = cluster.executor()
    a, b = (w.address for w in cluster.workers)
    x = e.submit(inc, 1, workers={a})
    y = e.submit(inc, x, workers={b})
    wait([x, y], timeout=T)
    who_has = e.who_has([x, y])
    assert a in who_has[x.key]  # (and b, which copied it for y)
    assert who_has[y.key] == [b]


def test_restrictions_map(cluster):
    e = cluster.executor()
    a, b = (w.address for w in cluster.workers)
    L = e.map(inc, range(5), workers={a})
    wait(L, timeout=T)
    assert set(e.has_what()[a]) == {x.key for x in L}
    assert not e.has_what()[b]


def test_restrictions_get(cluster):
    e = cluster.executor()
    a, b = (w.address for w in cluster.workers)
    dsk = {"x": 1, "y": (inc, "x"), "z": (inc, "y")}
    restrictions = {"y": {a}, "z": {b}}  # the original's third argument is workers= today
    assert e.get(dsk, "z", workers=restrictions) == 3
    hosts = {entry["key"]: entry["worker"] for entry in e.story("y", "z")
             if entry["worker"] and entry["finish"] == "executing"}
    assert hosts == {"y": a, "z": b}
    with pytest.raises(ValueError, match="nowhere"):
        e.get(dsk, "z", workers={"nowhere": [a]})


def test_submit_after_failed_worker(cluster):
    e = cluster.executor()
    L = e.map(inc, range(10))
    wait(L, timeout=T)
    cluster.workers[0].kill()
    total = e.submit(sum, L)
    assert total.result(T) == sum(map(inc, range(10)))


def test_gather_after_failed_worker(cluster):
    e = cluster.executor()
    L = e.map(inc, range(10))
    wait(L, timeout=T)
    cluster.workers[0].kill()
    assert e.gather(L, timeout=T) == list(map(inc, range(10)))


@pytest.mark.cluster(n_workers=4)
def test_gather_then_submit_after_failed_workers(cluster):
    e = cluster.executor()
    L = e.map(inc, range(20))
    wait(L, timeout=T)
    cluster.workers[0].kill()
    total = e.submit(sum, L)
    wait([total], timeout=T)
    holder = e.who_has([total])[total.key][0]
    for worker in cluster.workers[1:]:
        if worker.address == holder:
            worker.kill()
    assert e.gather([total], timeout=T) == [sum(map(inc, range(20)))]


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_errors_dont_block(cluster):
    e = cluster.executor()
    L = [e.submit(inc, 1), e.submit(throws, 1), e.submit(inc, 2), e.submit(throws, 2)]
    assert e.gather([L[0], L[2]], timeout=T) == [2, 3]
    assert isinstance(L[1].exception(T), RuntimeError)


def assert_list(x, z=None):
    return isinstance(x, list) and isinstance(z if z is not None else [], list)


def test_submit_quotes(e):
    assert e.submit(assert_list, [1, 2, 3]).result(T)
    assert e.submit(assert_list, [1, 2, 3], z=[4, 5, 6]).result(T)
    x = e.submit(inc, 1)
    y = e.submit(inc, 2)
    assert e.submit(assert_list, [x, y]).result(T)


def test_map_quotes(e):
    assert all(e.gather(e.map(assert_list, [[1, 2, 3], [4]])))
    assert all(e.gather(e.map(assert_list, [[1, 2, 3], [4]], z=[10])))
    assert all(e.gather(e.map(assert_list, [[1, 2, 3], [4]], [[]] * 3)))


def test_two_consecutive_executors_share_results(module_cluster):
    with Executor(module_cluster.address) as e, Executor(module_cluster.address) as f:
        x = e.submit(randint, 0, 1_000_000, pure=True)
        xx = x.result(T)
        y = f.submit(randint, 0, 1_000_000, pure=True)
        assert y.result(T) == xx  # one key, computed once


def test_submit_then_get_with_Future(e):
    x = e.submit(slowinc, 1)
    assert e.get({"y": (inc, x)}, "y") == 3


def test_aliases(e):
    x = e.submit(inc, 1)
    assert e.get({"y": x}, "y") == 2


def test__scatter(e):
    d = e.scatter({"y": 20})
    assert isinstance(d["y"], Future)
    assert e.who_has([d["y"]])[d["y"].key]
    assert e.gather([d["y"]]) == [20]
    [x] = e.scatter([10])
    assert isinstance(x, Future)
    assert e.gather([x]) == [10]
    z = e.submit(add, x, d["y"])  # submit works on scattered data
    assert z.result(T) == 10 + 20
    assert e.gather([z, x]) == [30, 10]


def test_get_releases_data(e, wait_until):
    [x] = e.get({"get-releases": (inc, 1)}, ["get-releases"])
    assert x == 2
    gc.collect()
    wait_until(lambda: _forgotten_at_center(e, "get-releases"), what="the key released")


def test_global_executors(module_cluster):
    with Executor(module_cluster.address) as e:
        assert default_executor() is e
        with Executor(module_cluster.address) as f:
            assert default_executor() is f
        assert default_executor() is e  # f is closed


def test_exception_on_exception(e):
    x = e.submit(div, 1, 0)
    y = e.submit(inc, x)
    with pytest.raises(ZeroDivisionError):
        y.result(T)
    z = e.submit(inc, y)
    with pytest.raises(ZeroDivisionError):
        z.result(T)


def test_nbytes(cluster):
    e = cluster.executor()
    [x] = e.scatter([1])
    small = sum(row["nbytes"] for row in cluster.worker_table(e).values())
    assert small > 0
    y = e.submit(identity, tuple(range(1000)))
    wait([y], timeout=T)
    held = sum(row["nbytes"] for row in cluster.worker_table(e).values())
    assert held - small >= 1000  # the center counts the tuple's bytes


def test_nbytes_determines_worker(cluster):
    e = cluster.executor()
    a, b = (w.address for w in cluster.workers)
    x = e.submit(identity, 1, workers=[a])
    y = e.submit(identity, tuple(range(10_000)), workers=[b])
    e.gather([x, y])
    z = e.submit(lambda x, y: None, x, y)
    z.result(T)
    assert e.who_has([z])[z.key] == [b]


def test_pragmatic_move_small_data_to_large_data(cluster):
    e = cluster.executor()
    lists = e.map(lambda n: list(range(n)), [10_000] * 10, pure=False)
    sums = e.map(sum, lists)
    total = e.submit(sum, sums)

    def f(x, y):
        return None

    results = e.map(f, lists, [total] * 10)
    wait(results, timeout=T)
    who_has = e.who_has(lists + results)
    for lst, r in zip(lists, results):
        assert who_has[lst.key] == who_has[r.key]


def test_get_with_non_list_key(e):
    dsk = {("x", 0): (inc, 1), 5: (inc, 2)}
    assert e.get(dsk, ("x", 0)) == 2
    assert e.get(dsk, 5) == 3


def test_get_with_error(e):
    with pytest.raises(ZeroDivisionError):
        e.get({"x": (div, 1, 0), "y": (inc, "x")}, "y")


def test_directed_scatter(cluster):
    e = cluster.executor()
    a, b = (w.address for w in cluster.workers)
    futures = e.scatter([1, 2, 3], workers=[a])
    assert len(futures) == 3
    has_what = e.has_what()
    assert len(has_what[a]) == 3
    assert not has_what[b]


def test_many_submits_spread_evenly(cluster):
    e = cluster.executor()
    L = [e.submit(slowinc, i) for i in range(10)]
    wait(L, timeout=T)
    assert all(e.has_what().values())


def test_traceback(e):
    x = e.submit(div, 1, 0)
    tb = x.traceback(T)
    assert any("x / y" in line for line in traceback.format_tb(tb))
    assert "x / y" in x.traceback_text()


def test_traceback_sync(e):
    x = e.submit(div, 1, 0)
    tb = traceback.format_tb(x.traceback(T))
    assert any("x / y" in line for line in tb)
    y = e.submit(inc, x)
    tb2 = traceback.format_tb(y.traceback(T))
    assert set(tb2).issuperset(set(tb))
    z = e.submit(div, 1, 2)
    assert z.traceback(T) is None


@pytest.mark.cluster(n_workers=2, nthreads=2, nanny=True)
def test_restart(cluster):
    e = cluster.executor()
    x = e.submit(inc, 1)
    y = e.submit(inc, x)
    assert y.result(T) == 3
    assert set(e.who_has()) == {x.key, y.key}
    e.restart()
    assert not any(e.who_has().values())
    assert x.cancelled() and y.cancelled()
    with pytest.raises(CancelledError):
        x.result(T)
    assert e.ncores() and sum(e.ncores().values()) == 4
    assert e.submit(div, 1, 3).result(T) == 1 / 3


@pytest.mark.cluster(n_workers=2, nthreads=2, nanny=True)
def test_restart_fast(cluster):
    e = cluster.executor()
    L = e.map(time.sleep, range(10))
    e.restart()
    assert all(x.status == "cancelled" for x in L)
    assert e.submit(inc, 1).result(T) == 2


def test_upload_file(e, tmp_path):
    def g():
        import original_2015_upload
        return original_2015_upload.f()

    path = tmp_path / "original_2015_upload.py"
    path.write_text("def f():\n    return 123")
    e.upload_file(path)
    assert e.submit(g, pure=False).result(T) == 123
    path.write_text("def f():\n    return 456")
    e.upload_file(path)
    assert e.submit(g, pure=False).result(T) == 456


def test_upload_file_exception(e, tmp_path):
    path = tmp_path / "original_2015_broken.py"
    path.write_text("syntax-error!")
    with pytest.raises(SyntaxError):
        e.upload_file(path)


def test_multiple_executors(module_cluster):
    a = Executor(module_cluster.address)
    b = Executor(module_cluster.address)
    try:
        x = a.submit(inc, 1)
        y = b.submit(inc, 2)
        assert x.executor is a
        assert y.executor is b
        assert x.result(T) == 2
        assert y.result(T) == 3
        z = a.submit(add, x, y)
        assert z.executor is a
        assert z.result(T) == 5
    finally:
        a.close()
        b.close()


@pytest.mark.cluster(n_workers=2, nthreads=2, nanny=True)
def test_multiple_executors_restart(cluster, wait_until):
    e1 = cluster.executor()
    e2 = cluster.executor()
    x = e1.submit(inc, 1)
    y = e2.submit(inc, 2)
    assert x.result(T) == 2
    assert y.result(T) == 3
    e1.restart()
    assert x.cancelled()
    # The other client's future hears of the restart from the center.
    wait_until(y.cancelled, what="the other client's future cancelled")


def test_async_compute(e):
    from dask import delayed
    x = delayed(1)
    y = delayed(inc)(x)
    z = delayed(dec)(x)
    yy, zz, aa = e.compute([y, z, 3])
    assert isinstance(yy, Future)
    assert isinstance(zz, Future)
    assert aa == 3
    assert e.gather([yy, zz]) == [2, 0]


def test_sync_compute(e):
    from dask import delayed
    x = delayed(1)
    y = delayed(inc)(x)
    z = delayed(dec)(x)
    yy, zz = e.compute([y, z], sync=True)
    assert (yy, zz) == (2, 0)


def test_remote_submit_on_Future(e):
    x = e.submit(lambda x: x + 1, 1)
    y = e.submit(lambda x: x + 1, x)
    assert y.result(T) == 3


def test_executor_with_scheduler(e):
    """The original connected to a scheduler process in front of the center; the center is
    the scheduler here."""
    assert sum(e.ncores().values()) == 4
    x = e.submit(inc, 1)
    y = e.submit(inc, 2)
    z = e.submit(add, x, y)
    assert x.result(T) == 1 + 1
    assert z.result(T) == 5
    a, b, c = e.scatter([1, 2, 3])
    assert e.gather([a, b, x]) == [1, 2, 2]
    assert e.get({"x": (inc, 1), "y": (add, "x", 10)}, "y") == 12


def test_remote_scatter_gather(e):
    x, y, z = e.scatter([1, 2, 3])
    who_has = e.who_has([x, y, z])
    assert all(who_has[f.key] for f in (x, y, z))
    assert e.gather([x, y, z]) == [1, 2, 3]
